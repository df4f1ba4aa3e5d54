package op

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stile-id/stile/storage"
)

// stile's own claims, in ID tokens, access tokens, userinfo and
// introspection alike.
const (
	ClaimUID        = "uid"        // the user's stable ID, equal to sub
	ClaimRoles      = "roles"      // a flat array of strings
	ClaimAttributes = "attributes" // a JSON object
)

// userClaims sets sub and the claims of u that the scopes and the claims
// parameter (named) ask for: uid, roles and attributes with openid; the
// standard claims of profile, email, phone and address that stile has.
func userClaims(ui *oidc.UserInfo, u *storage.User, scopes, named []string) {
	ui.Subject = u.ID
	if slices.Contains(scopes, oidc.ScopeOpenID) {
		ui.AppendClaims(ClaimUID, u.ID)
		ui.AppendClaims(ClaimRoles, rolesOf(u))
		ui.AppendClaims(ClaimAttributes, attributesOf(u))
	}
	for _, name := range wantedClaims(scopes, named) {
		if v, ok := standardClaim(u, name); ok {
			ui.AppendClaims(name, v)
		}
	}
}

func rolesOf(u *storage.User) []string {
	if u.Roles == nil {
		return []string{}
	}
	return u.Roles
}

func attributesOf(u *storage.User) map[string]any {
	if u.Attributes == nil {
		return map[string]any{}
	}
	return u.Attributes
}

// SetUserinfoFromScopes implements op.Storage. It sets only sub, which the
// ID token must never lack; SetUserinfoFromRequest adds the rest.
func (s *Storage) SetUserinfoFromScopes(_ context.Context, ui *oidc.UserInfo, userID, _ string, _ []string) error {
	ui.Subject = userID
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the
// claims of the ID token.
func (s *Storage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req zop.IDTokenRequest, scopes []string) error {
	u, err := s.user(ctx, req.GetSubject())
	if err != nil {
		return s.serverError(ctx, "get user for ID token", err)
	}
	userClaims(ui, u, scopes, idTokenClaimsOf(req))
	// sid names the SSO session, so a logout with this ID token as hint
	// ends that session even where the browser's cookie is not sent.
	if sid := sessionOf(req); sid != "" {
		ui.AppendClaims("sid", sid)
	}
	return nil
}

// idTokenClaimsOf lists the claims the claims parameter asked for in the
// ID token.
func idTokenClaimsOf(req zop.IDTokenRequest) []string {
	if r, ok := req.(*authRequest); ok {
		return r.a.IDTokenClaims
	}
	return nil
}

func sessionOf(req zop.IDTokenRequest) string {
	switch r := req.(type) {
	case *authRequest:
		return r.a.SessionID.String
	case *refreshRequest:
		return r.t.SessionID.String
	}
	return ""
}

// SetUserinfoFromToken implements op.Storage: the userinfo response for an
// access token that is still active.
func (s *Storage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	t, u, err := s.activeToken(ctx, tokenID, subject)
	if err != nil {
		return errInactive
	}
	userClaims(ui, u, t.Scopes, t.UserinfoClaims)
	return nil
}

// SetIntrospectionFromToken implements op.Storage. It answers only the
// client the token was issued to or a client in its audience; anyone else
// learns only that it is not active for them.
func (s *Storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, caller string) error {
	t, u, err := s.activeAnyToken(ctx, tokenID, subject)
	if err != nil {
		return errInactive
	}
	if caller != t.ClientID && !t.Audience.Contains(caller) {
		return errors.New("caller is neither the token's client nor in its audience")
	}
	ui := &oidc.UserInfo{Subject: t.ClientID} // a client_credentials token has no user
	if u != nil {
		userClaims(ui, u, t.Scopes, t.UserinfoClaims)
	}
	resp.SetUserInfo(ui)
	resp.Active = true
	resp.Scope = oidc.SpaceDelimitedArray(t.Scopes)
	resp.ClientID = t.ClientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(t.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(t.CreatedAt)
	resp.Audience = oidc.Audience(t.Audience)
	resp.Issuer = s.issuer
	resp.JWTID = t.ID
	return nil
}

// GetPrivateClaimsFromScopes implements op.Storage; GetPrivateClaimsFromRequest
// takes its place for access tokens.
func (s *Storage) GetPrivateClaimsFromScopes(ctx context.Context, userID, _ string, scopes []string) (map[string]any, error) {
	u, err := s.user(ctx, userID)
	if err != nil {
		return nil, s.serverError(ctx, "get user for access token", err)
	}
	return accessTokenClaims(u, scopes), nil
}

// GetPrivateClaimsFromRequest implements op.CanGetPrivateClaimsFromRequest:
// the claims of a JWT access token. The library sets no scope claim of its
// own, so stile adds one with every granted scope.
func (s *Storage) GetPrivateClaimsFromRequest(ctx context.Context, req zop.TokenRequest, _ []string) (map[string]any, error) {
	if cc, ok := req.(*clientCredentialsRequest); ok {
		return cc.claims(), nil
	}
	return s.GetPrivateClaimsFromScopes(ctx, req.GetSubject(), "", req.GetScopes())
}

func accessTokenClaims(u *storage.User, scopes []string) map[string]any {
	return map[string]any{
		ClaimUID:        u.ID,
		ClaimRoles:      rolesOf(u),
		ClaimAttributes: attributesOf(u),
		"scope":         strings.Join(scopes, " "),
	}
}

// errNoJWTProfile: stile registers no client keys, so the JWT bearer grant,
// private_key_jwt and signed request objects cannot succeed.
var errNoJWTProfile = oidc.ErrInvalidClient().WithDescription("client keys are not supported")

// GetKeyByIDAndClientID implements op.Storage.
func (s *Storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNoJWTProfile
}

// ValidateJWTProfileScopes implements op.Storage.
func (s *Storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errNoJWTProfile
}
