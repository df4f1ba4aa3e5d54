package main

import (
	"errors"
	"net/http"
	"slices"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/admin"
	"github.com/stile-id/stile/op"
)

// mountAdmin adds the management API, /api/v1, open to client_credentials
// tokens that carry stile:admin.
// The account service is the login's: one set of account operations, whose
// notices go out as the sign-in's do.
func mountAdmin(r *mux.Router, c appConfig, provider *op.Provider, accounts *account.Service) {
	admin.New(admin.Config{Accounts: accounts, DB: c.DB, Log: c.Log, Rate: c.AdminRate,
		Authorize: func(r *http.Request) (*admin.Caller, error) { return authorizeAdmin(provider, r) }}).Mount(r)
}

// authorizeAdmin admits a client's own token with stile:admin: no token
// or a dead one is ErrNoToken (401); a user's token, or a client's without
// the scope, is ErrScope (403).
func authorizeAdmin(provider *op.Provider, r *http.Request) (*admin.Caller, error) {
	b, err := provider.AuthorizeClient(r)
	switch {
	case errors.Is(err, op.ErrNoBearer):
		return nil, admin.ErrNoToken
	case errors.Is(err, op.ErrUserBearer):
		return nil, admin.ErrScope
	case err != nil:
		return nil, err
	case !slices.Contains(b.Scopes, op.ScopeAdmin):
		return nil, admin.ErrScope
	}
	return &admin.Caller{ClientID: b.ClientID}, nil
}
