package op

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stile-id/stile/storage"
)

// The client_credentials grant (RFC 6749 §4.4): a confidential client
// trades its own secret for an access token that acts for the client
// itself. The library runs the grant because Storage implements
// op.ClientCredentialsStorage: it calls ClientCredentials (the secret; an
// error is invalid_client), checks the client's grant types
// (unauthorized_client), calls ClientCredentialsTokenRequest (the scopes),
// then CreateAccessToken, and returns the token alone — never a refresh
// token or an ID token, as there is no user. The token's sub is the client
// ID (RFC 9068 §2.2), its aud the client's audiences; it is recorded
// without a user, so introspection and revocation find it and userinfo
// refuses it.

var _ zop.ClientCredentialsStorage = (*Storage)(nil)

// clientCredentialsRequest is what a client_credentials grant issues.
type clientCredentialsRequest struct {
	c      *client
	scopes []string
}

var _ zop.TokenRequest = (*clientCredentialsRequest)(nil)

func (r *clientCredentialsRequest) GetSubject() string    { return r.c.c.ID }
func (r *clientCredentialsRequest) GetAudience() []string { return r.c.audience() }
func (r *clientCredentialsRequest) GetScopes() []string   { return r.scopes }

// ClientCredentials implements op.ClientCredentialsStorage: the client
// proves itself with its secret, as at every other grant. A public client
// has no secret, so it never gets here.
func (s *Storage) ClientCredentials(ctx context.Context, id, secret string) (zop.Client, error) {
	c, err := s.authenticate(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	return &client{c: c, issuer: s.issuer, lifetimes: s.lifetimes}, nil
}

// ClientCredentialsTokenRequest implements op.ClientCredentialsStorage: it
// grants the requested scopes if the operator allowed each of them to this
// client, and every allowed scope but the privileged ones when none is
// requested (RFC 6749 §3.3's "pre-defined default").
func (s *Storage) ClientCredentialsTokenRequest(ctx context.Context, id string, scopes []string) (zop.TokenRequest, error) {
	c, err := s.client(ctx, id)
	if err != nil {
		return nil, s.serverError(ctx, "get client", err)
	}
	granted, err := grantScopes(c.c.AllowedScopes, scopes)
	if err != nil {
		return nil, err
	}
	return &clientCredentialsRequest{c: c, scopes: granted}, nil
}

// privilegedScopes are granted only when asked for by name: a token
// requested without a scope parameter, by a library's default, never
// carries the power to manage accounts.
var privilegedScopes = []string{ScopeAdmin}

func grantScopes(allowed storage.Strings, requested []string) ([]string, error) {
	if len(requested) == 0 {
		return slices.DeleteFunc(slices.Clone(allowed), func(sc string) bool { return slices.Contains(privilegedScopes, sc) }), nil
	}
	var out []string
	for _, sc := range requested {
		if !allowed.Contains(sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("A requested scope is not allowed for this client.")
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// createClientAccessToken records a client_credentials token: no user, so
// nothing a user's disabling, logout or password reset would revoke;
// deleting the client deletes it.
func (s *Storage) createClientAccessToken(ctx context.Context, r *clientCredentialsRequest) (string, time.Time, error) {
	t := &storage.AccessToken{
		ID:        uuid.NewString(),
		ClientID:  r.c.c.ID,
		Scopes:    storage.Strings(r.scopes),
		Audience:  storage.Strings(r.GetAudience()),
		ExpiresAt: s.db.Now().Add(r.c.accessTokenLifetime()),
	}
	if err := s.db.CreateAccessToken(ctx, t); err != nil {
		return "", time.Time{}, s.serverError(ctx, "create client access token", err)
	}
	return t.ID, t.ExpiresAt, nil
}

// claims are a client_credentials JWT's claims beyond the library's (iss,
// sub, aud, exp, iat, jti, client_id): the granted scopes, and nothing of a
// user's.
func (r *clientCredentialsRequest) claims() map[string]any {
	return map[string]any{"scope": strings.Join(r.scopes, " ")}
}

// activeAnyToken is activeToken for introspection, which also answers for
// a client's own token: active while unexpired and unrevoked, its subject
// its client, its user nil.
func (s *Storage) activeAnyToken(ctx context.Context, tokenID, subject string) (*storage.AccessToken, *storage.User, error) {
	t, err := s.db.GetAccessToken(ctx, tokenID)
	if err != nil {
		return nil, nil, err
	}
	if t.UserID != "" {
		return s.userToken(ctx, t, subject)
	}
	if !t.Active(s.db.Now()) || t.ClientID != subject {
		return nil, nil, errInactive
	}
	return t, nil, nil
}
