package op

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stile-id/stile/storage"
)

// refreshRequest adapts a stored refresh token to op.RefreshTokenRequest:
// what a refresh grant may issue, with the sign-in's auth_time and amr so
// a refreshed ID token keeps them.
type refreshRequest struct {
	t      *storage.RefreshToken
	scopes []string
}

var _ zop.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string            { return r.t.AMR }
func (r *refreshRequest) GetAudience() []string       { return r.t.Audience }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.t.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.t.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.t.UserID }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

func refreshHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

var errInvalidRefresh = oidc.ErrInvalidGrant().WithDescription("invalid refresh token")

// TokenRequestByRefreshToken implements op.Storage. A token that was
// already rotated and is presented again after the grace window means it
// leaked, or its chain forked: the whole family is revoked.
func (s *Storage) TokenRequestByRefreshToken(ctx context.Context, raw string) (zop.RefreshTokenRequest, error) {
	t, err := s.db.RefreshTokenByHash(ctx, refreshHash(raw))
	if notFound(err) {
		return nil, errInvalidRefresh
	}
	if err != nil {
		return nil, s.serverError(ctx, "get refresh token", err)
	}
	now := s.db.Now()
	if !t.Usable(now) {
		return nil, errInvalidRefresh
	}
	if t.RotatedAt.Valid && now.Sub(t.RotatedAt.Time) > s.lifetimes.RefreshGrace {
		s.revokeReused(ctx, t)
		return nil, errInvalidRefresh
	}
	if u, err := s.user(ctx, t.UserID); err != nil || u.Disabled {
		return nil, errInvalidRefresh
	}
	return &refreshRequest{t: t, scopes: t.Scopes}, nil
}

func (s *Storage) revokeReused(ctx context.Context, t *storage.RefreshToken) {
	err := s.db.RevokeFamily(ctx, t.FamilyID)
	s.log.WarnContext(ctx, "refresh token reused after rotation: family revoked", "client", t.ClientID, "user", t.UserID,
		"family", t.FamilyID, "err", err)
}

// CreateAccessAndRefreshTokens implements op.Storage. From a sign-in it
// starts a new family; from a refresh grant it rotates: the presented token
// is marked used and its successor stored, atomically (see rotate). The
// family's absolute expiry never moves.
func (s *Storage) CreateAccessAndRefreshTokens(ctx context.Context, req zop.TokenRequest, current string) (string, string, time.Time, error) {
	if r, ok := req.(*refreshRequest); ok {
		return s.refreshGrant(ctx, r)
	}
	ar, ok := req.(*authRequest)
	if !ok {
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	next, raw, err := s.newFamily(ctx, ar)
	if err != nil {
		return "", "", time.Time{}, err
	}
	at, err := s.newAccess(ctx, next.ClientID, next.UserID, req, familyAccess(next, ar))
	if err != nil {
		return "", "", time.Time{}, err
	}
	if err := s.db.CreateRefreshTokenWithAccess(ctx, next, at); err != nil {
		return "", "", time.Time{}, s.serverError(ctx, "create refresh and access token", err)
	}
	return at.ID, raw, at.ExpiresAt, nil
}

// refreshGrant builds the access token first (its checks read the client
// and the user), so the rotation stores it with the successor in one
// transaction: a refresh grant's writes cost one commit.
func (s *Storage) refreshGrant(ctx context.Context, r *refreshRequest) (string, string, time.Time, error) {
	at, err := s.newAccess(ctx, r.t.ClientID, r.t.UserID, r, familyAccess(r.t, nil))
	if err != nil {
		return "", "", time.Time{}, err
	}
	_, raw, err := s.rotate(ctx, r, at)
	if err != nil {
		return "", "", time.Time{}, err
	}
	return at.ID, raw, at.ExpiresAt, nil
}

// familyAccess ties an access token to the refresh token family of link
// (any link: they share family, session, claims and auth time) and, from a
// sign-in, to its authorization request.
func familyAccess(link *storage.RefreshToken, ar *authRequest) func(*storage.AccessToken) {
	return func(t *storage.AccessToken) {
		t.FamilyID = sql.NullString{String: link.FamilyID, Valid: true}
		t.SessionID = link.SessionID
		t.UserinfoClaims = link.UserinfoClaims
		t.AuthTime = sql.NullTime{Time: link.AuthTime, Valid: true}
		if ar != nil {
			t.AuthRequestID = sql.NullString{String: ar.a.ID, Valid: true}
		}
	}
}

// newFamily makes the first token of a family, for the caller to store
// with its access token. It records the authorization request, so a
// replay of its code revokes the family.
func (s *Storage) newFamily(ctx context.Context, ar *authRequest) (*storage.RefreshToken, string, error) {
	c, err := s.client(ctx, ar.a.ClientID)
	if err != nil {
		return nil, "", s.serverError(ctx, "get client", err)
	}
	now := s.db.Now()
	raw := newID()
	t := &storage.RefreshToken{
		ID: uuid.NewString(), TokenHash: refreshHash(raw), FamilyID: uuid.NewString(), ClientID: ar.a.ClientID,
		UserID: ar.GetSubject(), SessionID: ar.a.SessionID, Scopes: ar.a.Scopes, Audience: storage.Strings(ar.GetAudience()),
		AuthTime: ar.GetAuthTime(), AMR: ar.a.AMR, UserinfoClaims: ar.a.UserinfoClaims,
		ExpiresAt: now.Add(c.refreshIdle()), FamilyExpiresAt: now.Add(c.refreshAbsolute()),
		AuthRequestID: sql.NullString{String: ar.a.ID, Valid: true},
	}
	return t, raw, nil
}

// rotate replaces the presented token with its successor, and stores
// access with it. The successor
// is a function of its parent — its ID a name-based UUID of the parent's,
// its token an HMAC of the parent's ID under a key derived from the master
// key — so every use of one token inside the grace window (a client
// retrying, or racing itself) gets the same successor, and the family keeps
// exactly one live link. The token cannot be predicted without the key,
// even by someone who can read the database.
func (s *Storage) rotate(ctx context.Context, r *refreshRequest, access *storage.AccessToken) (*storage.RefreshToken, string, error) {
	c, err := s.client(ctx, r.t.ClientID)
	if err != nil {
		return nil, "", s.serverError(ctx, "get client", err)
	}
	raw := s.successorToken(r.t.ID)
	next := *r.t
	next.ID, next.TokenHash, next.Scopes = successorID(r.t.ID), refreshHash(raw), storage.Strings(r.scopes)
	next.ExpiresAt = s.db.Now().Add(c.refreshIdle())
	if next.ExpiresAt.After(r.t.FamilyExpiresAt) {
		next.ExpiresAt = r.t.FamilyExpiresAt
	}
	next.RotatedAt, next.RevokedAt = sql.NullTime{}, sql.NullTime{}
	ok, err := s.db.RotateRefreshTokenWithAccess(ctx, r.t.ID, s.lifetimes.RefreshGrace, &next, access)
	if err != nil {
		return nil, "", s.serverError(ctx, "rotate refresh token", err)
	}
	if !ok {
		s.revokeReused(ctx, r.t)
		return nil, "", errInvalidRefresh
	}
	return &next, raw, nil
}

// successorNamespace names the UUIDs of rotated refresh tokens.
var successorNamespace = uuid.MustParse("6f1d3c52-8a0e-4c61-9b57-2f43a1d7e9b0")

func successorID(parentID string) string {
	return uuid.NewSHA1(successorNamespace, []byte(parentID)).String()
}

func (s *Storage) successorToken(parentID string) string {
	m := hmac.New(sha256.New, s.refreshKey)
	m.Write([]byte("refresh-successor:" + parentID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// GetRefreshTokenInfo implements op.Storage for /revoke: it identifies a
// refresh token; anything else is op.ErrInvalidRefreshToken, and the
// library then tries it as an access token.
func (s *Storage) GetRefreshTokenInfo(ctx context.Context, _ string, raw string) (string, string, error) {
	t, err := s.db.RefreshTokenByHash(ctx, refreshHash(raw))
	if errors.Is(err, storage.ErrNotFound) {
		return "", "", zop.ErrInvalidRefreshToken
	}
	if err != nil {
		return "", "", err
	}
	return t.UserID, t.ID, nil
}
