package op

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stile-id/stile/storage"
)

// CreateAccessToken implements op.Storage: it records the token (JWT or
// opaque, the ID is the same) so userinfo and introspection can find it,
// and returns when it expires. A user disabled since the login gets none.
func (s *Storage) CreateAccessToken(ctx context.Context, req zop.TokenRequest) (string, time.Time, error) {
	ar, ok := req.(*authRequest)
	if !ok {
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	c, err := s.client(ctx, ar.a.ClientID)
	if err != nil {
		return "", time.Time{}, s.serverError(ctx, "get client", err)
	}
	user, err := s.db.GetUser(ctx, ar.GetSubject())
	if notFound(err) || (err == nil && user.Disabled) {
		return "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("the user cannot sign in")
	}
	if err != nil {
		return "", time.Time{}, s.serverError(ctx, "get user", err)
	}
	t := &storage.AccessToken{
		ID:            uuid.NewString(),
		ClientID:      c.c.ID,
		UserID:        user.ID,
		AuthRequestID: sql.NullString{String: ar.a.ID, Valid: true},
		Scopes:        storage.Strings(req.GetScopes()),
		Audience:      storage.Strings(req.GetAudience()),
		ExpiresAt:     s.db.Now().Add(c.accessTokenLifetime()),
	}
	if err := s.db.CreateAccessToken(ctx, t); err != nil {
		return "", time.Time{}, s.serverError(ctx, "create access token", err)
	}
	return t.ID, t.ExpiresAt, nil
}

// errNoRefresh: no client can hold the refresh_token grant yet (the store
// refuses it), so the library never asks for refresh tokens.
var errNoRefresh = oidc.ErrUnsupportedGrantType().WithDescription("refresh tokens are not issued")

// CreateAccessAndRefreshTokens implements op.Storage.
func (s *Storage) CreateAccessAndRefreshTokens(context.Context, zop.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errNoRefresh
}

// TokenRequestByRefreshToken implements op.Storage.
func (s *Storage) TokenRequestByRefreshToken(context.Context, string) (zop.RefreshTokenRequest, error) {
	return nil, oidc.ErrInvalidGrant()
}

// GetRefreshTokenInfo implements op.Storage: no token is a refresh token.
func (s *Storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", zop.ErrInvalidRefreshToken
}

// TerminateSession implements op.Storage. There are no SSO sessions yet:
// every sign-in asks for both factors.
func (s *Storage) TerminateSession(context.Context, string, string) error { return nil }

// RevokeToken implements op.Storage for access tokens (by ID). Unknown
// tokens are not an error (RFC 7009 §2.2); another client's token is.
func (s *Storage) RevokeToken(ctx context.Context, tokenID, _ string, clientID string) *oidc.Error {
	t, err := s.db.GetAccessToken(ctx, tokenID)
	if notFound(err) {
		return nil
	}
	if err != nil {
		s.log.ErrorContext(ctx, "revoke token", "err", err)
		return oidc.ErrServerError().WithDescription("internal error")
	}
	if t.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("the token was not issued to this client")
	}
	if err := s.db.RevokeAccessToken(ctx, tokenID); err != nil {
		s.log.ErrorContext(ctx, "revoke token", "err", err)
		return oidc.ErrServerError().WithDescription("internal error")
	}
	return nil
}

// activeToken returns the access token with this ID if it is unexpired,
// unrevoked, belongs to subject and its user can still sign in.
func (s *Storage) activeToken(ctx context.Context, tokenID, subject string) (*storage.AccessToken, *storage.User, error) {
	t, err := s.db.GetAccessToken(ctx, tokenID)
	if err != nil {
		return nil, nil, err
	}
	if !t.Active(s.db.Now()) || t.UserID != subject {
		return nil, nil, errInactive
	}
	u, err := s.db.GetUser(ctx, t.UserID)
	if err != nil {
		return nil, nil, err
	}
	if u.Disabled {
		return nil, nil, errInactive
	}
	return t, u, nil
}

var errInactive = errors.New("token expired, revoked or its user disabled")
