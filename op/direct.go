package op

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stile-id/stile/storage"
)

// ScopeMFA lets a first-party client manage its user's second factors
// through stile's self-service API.
const ScopeMFA = "stile:mfa"

// DirectTokens are the tokens of a sign-in without a browser.
type DirectTokens struct {
	IDToken, AccessToken, RefreshToken, TokenType string
	ExpiresIn                                     uint64
}

// IssueDirect mints tokens for a user the direct mode signed in: the same
// ID, access and (for a client with the grant) refresh tokens a code
// exchange gives, from an authorization request recorded as already
// answered, so every token is recorded, revocable and introspectable.
func (p *Provider) IssueDirect(ctx context.Context, clientID, userID string, amr []string, authTime time.Time) (*DirectTokens, error) {
	ctx = withMemo(withPinSlot(ctx)) // the client's pinned signing algorithm (keys.go)
	c, err := p.storage.client(ctx, clientID)
	if err != nil {
		return nil, err
	}
	scopes := storage.Strings{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail}
	if c.c.GrantTypes.Contains(storage.GrantRefreshToken) {
		scopes = append(scopes, oidc.ScopeOfflineAccess)
	}
	ar := &storage.AuthRequest{ID: newID(), ClientID: clientID, RedirectURI: "urn:stile:direct", Scopes: scopes,
		ResponseType: string(oidc.ResponseTypeCode), ExpiresAt: p.db.Now().Add(time.Minute)}
	if err := p.db.CreateAuthRequest(ctx, ar); err != nil {
		return nil, err
	}
	s := &storage.Session{UserID: userID, AuthTime: authTime, AMR: storage.Strings(amr)}
	if err := p.db.CompleteAuthRequest(ctx, ar.ID, s); err != nil {
		return nil, err
	}
	if ar, err = p.db.GetAuthRequest(ctx, ar.ID); err != nil {
		return nil, err
	}
	req, err := p.storage.wrap(ctx, ar)
	if err != nil {
		return nil, err
	}
	resp, err := zop.CreateTokenResponse(zop.ContextWithIssuer(ctx, p.issuer), req, c, p.zop, true, "", "")
	if err != nil {
		return nil, fmt.Errorf("issue direct-mode tokens: %w", err)
	}
	p.count.TokenIssued("direct")
	return &DirectTokens{IDToken: resp.IDToken, AccessToken: resp.AccessToken, RefreshToken: resp.RefreshToken,
		TokenType: resp.TokenType, ExpiresIn: resp.ExpiresIn}, nil
}

// Bearer is who holds a valid access token.
type Bearer struct {
	UserID, ClientID string
	Scopes           []string
	AuthTime         time.Time
	FirstParty       bool
}

// ErrNoBearer means the request carries no active access token.
var ErrNoBearer = errors.New("no active access token")

// bearer reads the request's access token (JWT or opaque) and returns the
// token's ID and subject, with a context that carries the issuer, as the
// library's userinfo does; ok is false without a well-formed token.
func (p *Provider) bearer(r *http.Request) (ctx context.Context, tokenID, subject string, ok bool) {
	ctx = zop.ContextWithIssuer(r.Context(), p.issuer)
	raw, err := zop.ParseUserinfoRequest(r, p.zop.Decoder())
	if err != nil || raw == "" {
		return ctx, "", "", false
	}
	tokenID, subject, ok = p.tokenID(r.WithContext(ctx), raw)
	return ctx, tokenID, subject, ok
}

// AuthorizeBearer reads and checks the request's access token (JWT or
// opaque) as userinfo does, for stile's own APIs.
func (p *Provider) AuthorizeBearer(r *http.Request) (*Bearer, error) {
	ctx, tokenID, subject, ok := p.bearer(r)
	if !ok {
		return nil, ErrNoBearer
	}
	t, u, err := p.storage.activeToken(ctx, tokenID, subject)
	if err != nil {
		return nil, ErrNoBearer
	}
	c, err := p.db.GetClient(ctx, t.ClientID)
	if err != nil {
		return nil, err
	}
	return &Bearer{UserID: u.ID, ClientID: c.ID, Scopes: slices.Clone([]string(t.Scopes)), AuthTime: t.AuthTime.Time,
		FirstParty: c.FirstParty}, nil
}
