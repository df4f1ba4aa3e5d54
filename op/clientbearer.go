package op

import (
	"errors"
	"net/http"
	"slices"

	"github.com/stile-id/stile/storage"
)

// ScopeAdmin opens the management API (/api/v1) to a client_credentials
// token. An operator allows it to a client (`stile client add|update
// --scope stile:admin`) and the client must ask for it by name.
const ScopeAdmin = "stile:admin"

// ClientBearer is a client that holds an active client_credentials token.
type ClientBearer struct {
	ClientID string
	Scopes   []string // granted, and still allowed to the client now
}

// ErrUserBearer means the request carries an active access token, but one
// that acts for a user rather than for a client.
var ErrUserBearer = errors.New("an access token of a user, not of a client")

// AuthorizeClient reads and checks the request's access token (JWT or
// opaque) for an API that only clients acting for themselves may call: it
// must be active (unexpired, unrevoked) and carry no user. ErrNoBearer
// when there is no such token at all; ErrUserBearer for a user's token.
//
// The scopes are those the token was granted and that the operator still
// allows the client: taking stile:admin away from a client closes the API
// to its tokens at once, not when they expire.
func (p *Provider) AuthorizeClient(r *http.Request) (*ClientBearer, error) {
	ctx, tokenID, subject, ok := p.bearer(r)
	if !ok {
		return nil, ErrNoBearer
	}
	t, u, err := p.storage.activeAnyToken(ctx, tokenID, subject)
	if err != nil {
		return nil, ErrNoBearer
	}
	if u != nil || t.UserID != "" {
		return nil, ErrUserBearer
	}
	c, err := p.db.GetClient(ctx, t.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNoBearer // deleted meanwhile
	}
	if err != nil {
		return nil, err
	}
	scopes := slices.DeleteFunc(slices.Clone([]string(t.Scopes)), func(sc string) bool { return !c.AllowedScopes.Contains(sc) })
	return &ClientBearer{ClientID: c.ID, Scopes: scopes}, nil
}
