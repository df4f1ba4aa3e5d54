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

// CreateAccessToken implements op.Storage for a sign-in that issues no
// refresh token, and for client_credentials.
func (s *Storage) CreateAccessToken(ctx context.Context, req zop.TokenRequest) (string, time.Time, error) {
	if cc, ok := req.(*clientCredentialsRequest); ok {
		return s.createClientAccessToken(ctx, cc)
	}
	ar, ok := req.(*authRequest)
	if !ok {
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	t, err := s.issueAccess(ctx, ar.a.ClientID, ar.GetSubject(), req, func(t *storage.AccessToken) {
		t.AuthRequestID = sql.NullString{String: ar.a.ID, Valid: true}
		t.SessionID = ar.a.SessionID
		t.UserinfoClaims = ar.a.UserinfoClaims
		t.AuthTime = ar.a.AuthTime
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return t.ID, t.ExpiresAt, nil
}

// issueAccess records an access token (JWT or opaque, the ID is the same)
// so userinfo, introspection and revocation can find it. A user disabled
// since the sign-in gets none.
func (s *Storage) issueAccess(ctx context.Context, clientID, userID string, req zop.TokenRequest, with func(*storage.AccessToken)) (*storage.AccessToken, error) {
	t, err := s.newAccess(ctx, clientID, userID, req, with)
	if err != nil {
		return nil, err
	}
	if err := s.db.CreateAccessToken(ctx, t); err != nil {
		return nil, s.serverError(ctx, "create access token", err)
	}
	return t, nil
}

// newAccess is issueAccess without the store: the refresh grant stores
// the token in the transaction that rotates the refresh token.
func (s *Storage) newAccess(ctx context.Context, clientID, userID string, req zop.TokenRequest, with func(*storage.AccessToken)) (*storage.AccessToken, error) {
	c, err := s.client(ctx, clientID)
	if err != nil {
		return nil, s.serverError(ctx, "get client", err)
	}
	user, err := s.user(ctx, userID)
	if notFound(err) || (err == nil && user.Disabled) {
		return nil, oidc.ErrInvalidGrant().WithDescription("the user cannot sign in")
	}
	if err != nil {
		return nil, s.serverError(ctx, "get user", err)
	}
	t := &storage.AccessToken{
		ID:        uuid.NewString(),
		ClientID:  c.c.ID,
		UserID:    user.ID,
		Scopes:    storage.Strings(req.GetScopes()),
		Audience:  storage.Strings(req.GetAudience()),
		ExpiresAt: s.db.Now().Add(c.accessTokenLifetime()),
	}
	with(t)
	return t, nil
}

// TerminateSession implements op.Storage. The library never calls it:
// stile serves /end_session itself (endsession.go), because ending a
// session needs the browser's cookie.
func (s *Storage) TerminateSession(context.Context, string, string) error { return nil }

// RevokeToken implements op.Storage. It receives an access token's ID, or
// (after GetRefreshTokenInfo) a refresh token's ID. Revoking a refresh token
// revokes its whole family, with the access tokens issued from it. Unknown
// tokens are not an error (RFC 7009 §2.2); another client's token is
// refused.
func (s *Storage) RevokeToken(ctx context.Context, tokenID, _ string, clientID string) *oidc.Error {
	var owner, family string
	if t, err := s.db.GetAccessToken(ctx, tokenID); err == nil {
		owner = t.ClientID
	} else if r, err := s.db.GetRefreshToken(ctx, tokenID); err == nil {
		owner, family = r.ClientID, r.FamilyID
	} else {
		return nil
	}
	if owner != clientID {
		return oidc.ErrUnauthorizedClient().WithDescription("the token was not issued to this client")
	}
	var err error
	if family != "" {
		err = s.db.RevokeFamily(ctx, family)
	} else {
		err = s.db.RevokeAccessToken(ctx, tokenID)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "revoke token", "err", err)
		return oidc.ErrServerError().WithDescription("internal error")
	}
	return nil
}

// activeToken returns the access token with this ID if it is unexpired,
// unrevoked, belongs to subject and its user can still sign in. A client's
// own token (client_credentials) has no user and is not one.
func (s *Storage) activeToken(ctx context.Context, tokenID, subject string) (*storage.AccessToken, *storage.User, error) {
	t, err := s.db.GetAccessToken(ctx, tokenID)
	if err != nil {
		return nil, nil, err
	}
	return s.userToken(ctx, t, subject)
}

// userToken is activeToken's check of a token already read.
func (s *Storage) userToken(ctx context.Context, t *storage.AccessToken, subject string) (*storage.AccessToken, *storage.User, error) {
	if t.UserID == "" || !t.Active(s.db.Now()) || t.UserID != subject {
		return nil, nil, errInactive
	}
	u, err := s.user(ctx, t.UserID)
	if err != nil {
		return nil, nil, err
	}
	if u.Disabled {
		return nil, nil, errInactive
	}
	return t, u, nil
}

var errInactive = errors.New("token expired, revoked or its user disabled")
