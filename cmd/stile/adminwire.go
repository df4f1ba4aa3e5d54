package main

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/admin"
	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
)

// mountAdmin adds the management API, /api/v1, open to client_credentials
// tokens that carry stile:admin.
func mountAdmin(r *mux.Router, c appConfig, provider *op.Provider, sealer *keys.Sealer) {
	accounts := account.New(account.Config{DB: c.DB, Hasher: c.Hasher, Sealer: sealer,
		RecoveryKey: codeKeys(c.Master).Recovery, Issuer: c.Issuer, IssuerLabel: issuerLabel(c.Issuer), Log: c.Log,
		Notify: notifyByEmail(c)})
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

// notifyByEmail tells a user about a change the API made to their account
// (a new password, a removed factor) by email, as self-service changes
// do; without an email sender or address, nothing is sent.
func notifyByEmail(c appConfig) func(context.Context, *storage.User, string, string) {
	return func(ctx context.Context, u *storage.User, subject, text string) {
		if c.Delivery.Email == nil || u.Email == "" {
			return
		}
		if err := c.Delivery.Email.Send(ctx, u.Email, subject, text); err != nil {
			c.Log.Error("notify user", "user", u.ID, "subject", subject, "err", err)
		}
	}
}
