package op

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stile-id/stile/storage"
)

// NewClientSecret returns a new client secret: 256 random bits, URL-safe.
func NewClientSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// SecretDigest is what the store keeps of a client secret: an HMAC-SHA256
// under a key derived from the master key. Secrets have full entropy, so a
// slow hash would buy nothing and cost every token request.
func SecretDigest(key []byte, secret string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// client adapts a stored client to the library's op.Client.
type client struct {
	c         *storage.Client
	issuer    string
	lifetimes Lifetimes
}

var _ zop.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.c.ID }
func (c *client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }
func (c *client) ResponseTypes() []oidc.ResponseType {
	if !c.c.GrantTypes.Contains(storage.GrantAuthorizationCode) {
		return nil // a client_credentials-only client signs nobody in
	}
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }

func (c *client) ApplicationType() zop.ApplicationType {
	switch c.c.Type {
	case storage.ClientSPA:
		return zop.ApplicationTypeUserAgent
	case storage.ClientNative:
		return zop.ApplicationTypeNative
	default:
		return zop.ApplicationTypeWeb
	}
}

func (c *client) AuthMethod() oidc.AuthMethod { return oidc.AuthMethod(c.c.AuthMethod) }

func (c *client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, len(c.c.GrantTypes))
	for i, g := range c.c.GrantTypes {
		out[i] = oidc.GrantType(g)
	}
	return out
}

// IsScopeAllowed admits the one scope beyond OpenID's: stile:mfa, for
// first-party clients only (it lets a token manage second factors).
func (c *client) IsScopeAllowed(scope string) bool { return scope == ScopeMFA && c.c.FirstParty }

// DevMode relaxes the library's rule that a browser application's redirect
// URIs be https: stile's store only lets them be http on loopback, where a
// developer's SPA runs. Exact matching is unaffected.
func (c *client) DevMode() bool { return c.c.Type == storage.ClientSPA }

// LoginURL sends every client to stile's own /login first: it binds the
// login to the browser and checks the session before anything else.
func (c *client) LoginURL(authRequestID string) string {
	return c.issuer + "/login?authRequestID=" + url.QueryEscape(authRequestID)
}

func (c *client) AccessTokenType() zop.AccessTokenType {
	if c.c.AccessTokenFormat == storage.TokenFormatOpaque {
		return zop.AccessTokenTypeBearer
	}
	return zop.AccessTokenTypeJWT
}

func (c *client) IDTokenLifetime() time.Duration {
	if c.c.IDTokenLifetime > 0 {
		return time.Duration(c.c.IDTokenLifetime)
	}
	return c.lifetimes.IDToken
}

func (c *client) accessTokenLifetime() time.Duration {
	if c.c.AccessTokenLifetime > 0 {
		return time.Duration(c.c.AccessTokenLifetime)
	}
	return c.lifetimes.AccessToken
}

func (c *client) refreshIdle() time.Duration {
	if c.c.RefreshTokenIdle > 0 {
		return time.Duration(c.c.RefreshTokenIdle)
	}
	return c.lifetimes.RefreshIdle
}

func (c *client) refreshAbsolute() time.Duration {
	if c.c.RefreshTokenAbsolute > 0 {
		return time.Duration(c.c.RefreshTokenAbsolute)
	}
	return c.lifetimes.RefreshAbsolute
}

// audience is what access tokens for this client carry in aud: its
// configured audiences, or its own ID when it has none.
func (c *client) audience() []string {
	if len(c.c.Audiences) > 0 {
		return slices.Clone(c.c.Audiences)
	}
	return []string{c.c.ID}
}

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (s *Storage) client(ctx context.Context, id string) (*client, error) {
	c, err := s.storedClient(ctx, id)
	if err != nil {
		return nil, err
	}
	recordPin(ctx, c.ID, c.SigningAlg) // the key SigningKey picks (keys.go)
	return &client{c: c, issuer: s.issuer, lifetimes: s.lifetimes}, nil
}

// GetClientByClientID implements op.Storage.
func (s *Storage) GetClientByClientID(ctx context.Context, id string) (zop.Client, error) {
	c, err := s.client(ctx, id)
	if notFound(err) {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	if err != nil {
		return nil, s.serverError(ctx, "get client", err)
	}
	return c, nil
}

// AuthorizeClientIDSecret implements op.Storage.
func (s *Storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	_, err := s.authenticate(ctx, id, secret)
	return err
}

// authenticate returns the client whose secret this is: its digest must
// match, compared in constant time. A public client has no secret to match.
func (s *Storage) authenticate(ctx context.Context, id, secret string) (*storage.Client, error) {
	c, err := s.storedClient(ctx, id)
	if err != nil && !notFound(err) {
		return nil, s.serverError(ctx, "get client", err)
	}
	got := SecretDigest(s.secretKey, secret)
	if c == nil || len(c.SecretHash) == 0 || !hmac.Equal(got, c.SecretHash) {
		return nil, oidc.ErrInvalidClient().WithDescription("invalid client credentials")
	}
	return c, nil
}
