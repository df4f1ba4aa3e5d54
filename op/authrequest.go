package op

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stile-id/stile/storage"
)

// authRequest adapts a stored authorization request to op.AuthRequest.
type authRequest struct {
	a        *storage.AuthRequest
	audience []string
}

var _ zop.AuthRequest = (*authRequest)(nil)

func (r *authRequest) GetID() string                      { return r.a.ID }
func (r *authRequest) GetACR() string                     { return acrFor(r.a.AMR) } // acr.go
func (r *authRequest) GetAMR() []string                   { return r.a.AMR }
func (r *authRequest) GetAudience() []string              { return r.audience }
func (r *authRequest) GetClientID() string                { return r.a.ClientID }
func (r *authRequest) GetNonce() string                   { return r.a.Nonce }
func (r *authRequest) GetRedirectURI() string             { return r.a.RedirectURI }
func (r *authRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseType(r.a.ResponseType) }
func (r *authRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(r.a.ResponseMode) }
func (r *authRequest) GetScopes() []string                { return r.a.Scopes }
func (r *authRequest) GetState() string                   { return r.a.State }
func (r *authRequest) GetSubject() string                 { return r.a.UserID.String }
func (r *authRequest) Done() bool                         { return r.a.Done }

func (r *authRequest) GetAuthTime() time.Time {
	if !r.a.AuthTime.Valid {
		return time.Time{}
	}
	return r.a.AuthTime.Time
}

func (r *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if r.a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: r.a.CodeChallenge, Method: oidc.CodeChallengeMethod(r.a.CodeChallengeMethod)}
}

func (s *Storage) wrap(ctx context.Context, a *storage.AuthRequest) (*authRequest, error) {
	c, err := s.client(ctx, a.ClientID)
	if err != nil {
		return nil, err
	}
	return &authRequest{a: a, audience: c.audience()}, nil
}

// CreateAuthRequest implements op.Storage. The library has validated the
// client, redirect URI, scopes and response type; stile adds its PKCE rules:
// only S256, and a challenge is required where the client says so (always
// for public clients).
func (s *Storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, hintSubject string) (zop.AuthRequest, error) {
	c, err := s.client(ctx, req.ClientID)
	if err != nil {
		return nil, s.serverError(ctx, "get client", err)
	}
	userinfoClaims, idTokenClaims, err := checkExtras(ctx, req)
	if err != nil {
		return nil, err
	}
	switch {
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256; plain is not supported")
	case req.CodeChallenge == "" && c.c.RequirePKCE:
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method=S256")
	}
	scopes := storage.Strings(req.Scopes)
	if !c.c.GrantTypes.Contains(storage.GrantRefreshToken) {
		// OpenID Connect Core §11: offline_access is ignored for a client
		// that cannot use refresh tokens.
		scopes = slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == oidc.ScopeOfflineAccess })
	}
	a := &storage.AuthRequest{
		ID:                  newID(),
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		Scopes:              scopes,
		State:               req.State,
		Nonce:               req.Nonce,
		ResponseType:        string(req.ResponseType),
		ResponseMode:        string(req.ResponseMode),
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt:              storage.Strings(req.Prompt),
		LoginHint:           req.LoginHint,
		UILocales:           req.UILocales.String(),
		ACRValues:           strings.Join(req.ACRValues, " "),
		HintSubject:         hintSubject,
		UserinfoClaims:      userinfoClaims,
		IDTokenClaims:       idTokenClaims,
		ExpiresAt:           s.db.Now().Add(s.lifetimes.Login),
	}
	if req.MaxAge != nil {
		a.MaxAge = sql.NullInt64{Int64: int64(*req.MaxAge), Valid: true}
	}
	if err := s.admitAuthRequest(ctx); err != nil {
		return nil, err
	}
	if err := s.db.CreateAuthRequest(ctx, a); err != nil {
		return nil, s.serverError(ctx, "create auth request", err)
	}
	return &authRequest{a: a, audience: c.audience()}, nil
}

// AuthRequestByID implements op.Storage.
func (s *Storage) AuthRequestByID(ctx context.Context, id string) (zop.AuthRequest, error) {
	a, err := s.db.GetAuthRequest(ctx, id)
	if notFound(err) {
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown or expired sign-in")
	}
	if err != nil {
		return nil, s.serverError(ctx, "get auth request", err)
	}
	return s.wrap(ctx, a)
}

// SaveAuthCode implements op.Storage: only the code's hash is kept, with
// its expiry.
func (s *Storage) SaveAuthCode(ctx context.Context, id, code string) error {
	if err := s.db.SaveCode(ctx, id, codeHash(code), s.db.Now().Add(s.lifetimes.Code)); err != nil {
		return s.serverError(ctx, "save code", err)
	}
	return nil
}

// AuthRequestByCode implements op.Storage. Redeeming is atomic: of many
// concurrent exchanges of one code exactly one gets the request. A code
// presented again revokes the whole grant its first exchange started — the
// access tokens and every refresh-token family with what they issued since
// (RFC 6749 §4.1.2 "SHOULD revoke all tokens previously issued based on
// that authorization code"): the code may have been stolen, and a
// refresh token left alive would keep the thief in.
func (s *Storage) AuthRequestByCode(ctx context.Context, code string) (zop.AuthRequest, error) {
	a, err := s.db.RedeemCode(ctx, codeHash(code))
	if errors.Is(err, storage.ErrCodeReused) {
		n, rerr := s.db.RevokeAuthRequestTokens(ctx, a.ID)
		s.log.WarnContext(ctx, "authorization code reused: its whole grant revoked", "client", a.ClientID, "user", a.UserID.String,
			"revoked", n, "err", rerr)
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid code")
	}
	if notFound(err) {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid code")
	}
	if err != nil {
		return nil, s.serverError(ctx, "redeem code", err)
	}
	return s.wrap(ctx, a)
}

// DeleteAuthRequest implements op.Storage. The library calls it once the
// tokens are minted, before it answers. The row stays, marked redeemed,
// until cleanup: it is what recognises a replayed code and revokes what the
// code issued. A replay that raced this exchange may have revoked the grant
// before these tokens were stored; SettleRedemption tells, and then they
// are revoked too and the exchange fails like the replay did.
func (s *Storage) DeleteAuthRequest(ctx context.Context, id string) error {
	err := s.db.SettleRedemption(ctx, id)
	if errors.Is(err, storage.ErrCodeReused) {
		n, rerr := s.db.RevokeAuthRequestTokens(ctx, id)
		s.log.WarnContext(ctx, "authorization code replayed during its first exchange: its whole grant revoked", "revoked", n, "err", rerr)
		return oidc.ErrInvalidGrant().WithDescription("invalid code")
	}
	if err != nil {
		return s.serverError(ctx, "settle code redemption", err)
	}
	return nil
}

func codeHash(code string) []byte {
	h := sha256.Sum256([]byte(code))
	return h[:]
}

// newID returns an unguessable identifier: 256 random bits, URL-safe, with
// no ':' (the library splits opaque tokens on it).
func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
