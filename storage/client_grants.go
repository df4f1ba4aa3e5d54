package storage

import (
	"fmt"
	"regexp"
	"slices"
)

// Grants is every grant a client may be given.
var Grants = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}

// userScopes concern a signed-in user (OpenID Connect's scopes, a refresh
// token's offline_access, stile:mfa for managing one's own factors). A
// client_credentials token has no user, so none of them can be allowed to
// one; they are listed here, not imported, as storage imports nothing of
// stile's.
var userScopes = []string{"openid", "profile", "email", "phone", "address", "offline_access", "stile:mfa"}

// scopeToken is RFC 6749 §3.3's scope-token, bounded in length.
var scopeToken = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,128}$`)

// uuidShape matches a UUID, the shape of every user ID.
var uuidShape = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// validateGrants checks the grant types and what each needs: a sign-in
// (authorization_code) needs a redirect URI, and refresh tokens come only
// from one; client_credentials needs a client that can keep a secret.
func (c *Client) validateGrants() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(Grants, g) {
			return bad("grant_type %q: use authorization_code, refresh_token or client_credentials", g)
		}
	}
	signIn := c.GrantTypes.Contains(GrantAuthorizationCode)
	if c.GrantTypes.Contains(GrantRefreshToken) && !signIn {
		return bad("grant_types: refresh_token needs authorization_code (refresh tokens come from a sign-in)")
	}
	if !signIn && !c.GrantTypes.Contains(GrantClientCredentials) {
		return bad("grant_types: give authorization_code or client_credentials")
	}
	if signIn && len(c.RedirectURIs) == 0 {
		return bad("redirect_uris: at least one is needed for authorization_code")
	}
	if c.Headless && !signIn {
		return bad("headless: the direct mode signs users in and needs authorization_code")
	}
	if c.GrantTypes.Contains(GrantClientCredentials) {
		if c.Public() {
			return bad("grant_type client_credentials: a %s client is public and cannot keep the secret it needs; use a web client", c.Type)
		}
		// Its tokens carry the client ID as sub (RFC 9068 §2.2): it must
		// never read as a user's ID, which is a UUID.
		if uuidShape.MatchString(c.ID) {
			return bad("client_id %q: a client with client_credentials must not look like a UUID (its tokens' sub would read as a user's)", c.ID)
		}
	}
	return c.validateScopes()
}

// validateScopes checks the scopes client_credentials may grant: valid
// scope tokens, none that concern a user.
func (c *Client) validateScopes() error {
	for _, s := range c.AllowedScopes {
		if !scopeToken.MatchString(s) {
			return fmt.Errorf("%w: allowed scope %q: not a valid scope (printable ASCII without spaces, '\"' or '\\')", ErrInvalid, s)
		}
		if slices.Contains(userScopes, s) {
			return fmt.Errorf("%w: allowed scope %q: it concerns a signed-in user; a client_credentials token has none", ErrInvalid, s)
		}
	}
	return nil
}
