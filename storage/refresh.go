package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// RefreshToken is one link of a rotating chain: using it replaces it with a
// new token of the same family. Only the token's hash is stored.
type RefreshToken struct {
	ID              string         `db:"id"`
	TokenHash       []byte         `db:"token_hash"`
	FamilyID        string         `db:"family_id"`
	ClientID        string         `db:"client_id"`
	UserID          string         `db:"user_id"`
	SessionID       sql.NullString `db:"session_id"`
	Scopes          Strings        `db:"scopes"`
	Audience        Strings        `db:"audience"`
	AuthTime        time.Time      `db:"auth_time"`
	AMR             Strings        `db:"amr"`
	CreatedAt       time.Time      `db:"created_at"`
	ExpiresAt       time.Time      `db:"expires_at"`        // idle expiry of this link
	FamilyExpiresAt time.Time      `db:"family_expires_at"` // absolute expiry of the chain
	RotatedAt       sql.NullTime   `db:"rotated_at"`
	RevokedAt       sql.NullTime   `db:"revoked_at"`
	UserinfoClaims  Strings        `db:"userinfo_claims"` // carried to the access tokens it yields
	AuthRequestID   sql.NullString `db:"auth_request_id"` // the sign-in the family started from; every link carries it
}

// Usable reports whether the token is unrevoked and unexpired at now. A
// rotated token may still be usable within the grace window; see
// RotateRefreshToken.
func (t *RefreshToken) Usable(now time.Time) bool {
	return !t.RevokedAt.Valid && now.Before(t.ExpiresAt) && now.Before(t.FamilyExpiresAt)
}

const refreshColumns = `id, token_hash, family_id, client_id, user_id, session_id, scopes, audience, auth_time, amr,
	created_at, expires_at, family_expires_at, rotated_at, revoked_at, userinfo_claims, auth_request_id`

// insertRefresh adds a token; with ON CONFLICT DO NOTHING an existing row
// of the same ID (a successor another request already inserted) is kept.
const insertRefresh = `INSERT INTO refresh_tokens (` + refreshColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)`

func (d *DB) insertRefresh(ctx context.Context, q queryer, t *RefreshToken, suffix string) (int64, error) {
	t.CreatedAt = d.Now()
	return d.exec(ctx, q, insertRefresh+suffix, t.ID, t.TokenHash, t.FamilyID, t.ClientID, t.UserID, t.SessionID, t.Scopes,
		t.Audience, t.AuthTime.UTC(), t.AMR, t.CreatedAt, t.ExpiresAt.UTC(), t.FamilyExpiresAt.UTC(), t.UserinfoClaims,
		t.AuthRequestID)
}

// CreateRefreshToken stores a new token. The caller sets everything but
// CreatedAt.
func (d *DB) CreateRefreshToken(ctx context.Context, t *RefreshToken) error {
	if _, err := d.insertRefresh(ctx, d.w, t, ""); err != nil {
		return fmt.Errorf("create refresh token: %w", err)
	}
	return nil
}

// CreateRefreshTokenWithAccess stores the first token of a family and
// the access token issued with it in one transaction: a code exchange's
// writes cost one commit, and neither is stored without the other.
func (d *DB) CreateRefreshTokenWithAccess(ctx context.Context, t *RefreshToken, a *AccessToken) error {
	err := d.tx(ctx, func(q queryer) error {
		if _, err := d.insertRefresh(ctx, q, t, ""); err != nil {
			return err
		}
		return d.insertAccess(ctx, q, a)
	})
	if err != nil {
		return fmt.Errorf("create refresh and access token: %w", err)
	}
	return nil
}

// RefreshTokenByHash returns the token whose hash is hash, in any state.
func (d *DB) RefreshTokenByHash(ctx context.Context, hash []byte) (*RefreshToken, error) {
	var t RefreshToken
	if err := d.get(ctx, d.r, &t, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE token_hash = ?`, hash); err != nil {
		return nil, fmt.Errorf("get refresh token: %w", err)
	}
	return &t, nil
}

// GetRefreshToken returns the token with this ID.
func (d *DB) GetRefreshToken(ctx context.Context, id string) (*RefreshToken, error) {
	var t RefreshToken
	if err := d.get(ctx, d.r, &t, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE id = ?`, id); err != nil {
		return nil, fmt.Errorf("get refresh token: %w", err)
	}
	return &t, nil
}

// RotateRefreshToken marks the token id used and stores its successor
// next, in one transaction, and reports whether the caller may hand next
// out. The first use always may. A later use may only within grace of the
// first (a client retrying a request whose answer it lost), and then gets
// the same successor: the caller derives next's ID and token from id, so
// the insert of every retry meets the first one's row and keeps it (ON
// CONFLICT DO NOTHING), and the family never holds two live successors.
// With grace 0, of many concurrent uses exactly one wins.
func (d *DB) RotateRefreshToken(ctx context.Context, id string, grace time.Duration, next *RefreshToken) (bool, error) {
	return d.RotateRefreshTokenWithAccess(ctx, id, grace, next, nil)
}

// RotateRefreshTokenWithAccess is RotateRefreshToken that also stores the
// access token the refresh grant hands out with next, in the same
// transaction and only if the rotation is allowed: a refresh grant's
// writes cost one commit. access may be nil.
func (d *DB) RotateRefreshTokenWithAccess(ctx context.Context, id string, grace time.Duration, next *RefreshToken, access *AccessToken) (bool, error) {
	now := d.Now()
	q := `UPDATE refresh_tokens SET rotated_at = ? WHERE id = ? AND revoked_at IS NULL AND rotated_at IS NULL`
	args := []any{now, id}
	if grace > 0 {
		q = `UPDATE refresh_tokens SET rotated_at = COALESCE(rotated_at, ?)
			WHERE id = ? AND revoked_at IS NULL AND (rotated_at IS NULL OR rotated_at >= ?)`
		args = append(args, now.Add(-grace))
	}
	if d.dialect == Postgres {
		return d.rotateInOne(ctx, q, args, next, access)
	}
	var ok bool
	err := d.tx(ctx, func(tx queryer) error {
		n, err := d.exec(ctx, tx, q, args...)
		if err != nil || n != 1 {
			return err
		}
		ok = true
		if _, err = d.insertRefresh(ctx, tx, next, ` ON CONFLICT DO NOTHING`); err != nil || access == nil {
			return err
		}
		return d.insertAccess(ctx, tx, access)
	})
	if err != nil {
		return false, fmt.Errorf("rotate refresh token: %w", err)
	}
	return ok, nil
}

// rotateInOne is the rotation as one PostgreSQL statement, one round trip
// where a transaction takes five (BEGIN, UPDATE, two INSERTs, COMMIT):
// the successor and the access token are inserted from the rows the
// conditional UPDATE returns, so from none when it matched none.
// Parameters in INSERT … SELECT carry no column type, hence the casts.
func (d *DB) rotateInOne(ctx context.Context, update string, args []any, next *RefreshToken, access *AccessToken) (bool, error) {
	next.CreatedAt = d.Now()
	q := `WITH used AS (` + update + ` RETURNING id),
		successor AS (INSERT INTO refresh_tokens (` + refreshColumns + `)
			SELECT ?::text, ?::bytea, ?::text, ?::text, ?::text, ?::text, ?::jsonb, ?::jsonb, ?::timestamptz, ?::jsonb,
				?::timestamptz, ?::timestamptz, ?::timestamptz, NULL, NULL, ?::jsonb, ?::text FROM used
			ON CONFLICT DO NOTHING)`
	args = append(args, next.ID, next.TokenHash, next.FamilyID, next.ClientID, next.UserID, next.SessionID, next.Scopes,
		next.Audience, next.AuthTime.UTC(), next.AMR, next.CreatedAt, next.ExpiresAt.UTC(), next.FamilyExpiresAt.UTC(),
		next.UserinfoClaims, next.AuthRequestID)
	if access != nil {
		access.CreatedAt = next.CreatedAt
		q += `, access AS (INSERT INTO access_tokens (id, client_id, user_id, auth_request_id, family_id, session_id, scopes,
				audience, created_at, expires_at, userinfo_claims, auth_time)
			SELECT ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::jsonb, ?::jsonb, ?::timestamptz, ?::timestamptz,
				?::jsonb, ?::timestamptz FROM used)`
		args = append(args, access.ID, access.ClientID, NullString{String: access.UserID, Valid: access.UserID != ""},
			access.AuthRequestID, access.FamilyID, access.SessionID, access.Scopes, access.Audience, access.CreatedAt,
			access.ExpiresAt.UTC(), access.UserinfoClaims, access.AuthTime)
	}
	var n int
	if err := d.get(ctx, d.w, &n, q+` SELECT COUNT(*) FROM used`, args...); err != nil {
		return false, fmt.Errorf("rotate refresh token: %w", err)
	}
	return n == 1, nil
}

// RefreshFamily returns every token of a family, oldest first.
func (d *DB) RefreshFamily(ctx context.Context, familyID string) ([]RefreshToken, error) {
	var out []RefreshToken
	err := d.sel(ctx, d.r, &out, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE family_id = ? ORDER BY created_at, id`, familyID)
	if err != nil {
		return nil, fmt.Errorf("list refresh token family: %w", err)
	}
	return out, nil
}

// RevokeFamily revokes every refresh token of a family and every access
// token issued from them.
func (d *DB) RevokeFamily(ctx context.Context, familyID string) error {
	err := d.tx(ctx, func(q queryer) error { return d.revokeTokensWhere(ctx, q, "family_id = ?", familyID) })
	if err != nil {
		return fmt.Errorf("revoke token family: %w", err)
	}
	return nil
}

// CountLiveRefreshTokens counts a user's refresh tokens that are neither
// revoked nor expired (rotated ones inside their grace window included).
func (d *DB) CountLiveRefreshTokens(ctx context.Context, userID string) (int, error) {
	now := d.Now()
	var n int
	err := d.get(ctx, d.r, &n, `SELECT COUNT(*) FROM refresh_tokens
		WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? AND family_expires_at > ?`, userID, now, now)
	if err != nil {
		return 0, fmt.Errorf("count live refresh tokens: %w", err)
	}
	return n, nil
}

// ListLiveRefreshTokens returns the user's refresh tokens that are
// neither revoked nor expired, newest first: one per grant still in use.
func (d *DB) ListLiveRefreshTokens(ctx context.Context, userID string) ([]RefreshToken, error) {
	now := d.Now()
	var out []RefreshToken
	q := `SELECT ` + refreshColumns + ` FROM refresh_tokens
		WHERE user_id = ? AND revoked_at IS NULL AND rotated_at IS NULL AND expires_at > ? AND family_expires_at > ?
		ORDER BY created_at DESC, id`
	if err := d.sel(ctx, d.r, &out, q, userID, now, now); err != nil {
		return nil, fmt.Errorf("list refresh tokens of user %s: %w", userID, err)
	}
	return out, nil
}
