package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// AccessToken records an issued access token, JWT or opaque, so that
// userinfo, introspection and revocation can find it by ID.
type AccessToken struct {
	ID             string         `db:"id"` // the JWT's jti, or the opaque token's inner ID
	ClientID       string         `db:"client_id"`
	UserID         string         `db:"user_id"` // "": a client_credentials token, the client's own (NULL in the table)
	AuthRequestID  sql.NullString `db:"auth_request_id"`
	FamilyID       sql.NullString `db:"family_id"`  // the refresh token family it was issued with
	SessionID      sql.NullString `db:"session_id"` // the SSO session it was issued under
	Scopes         Strings        `db:"scopes"`
	Audience       Strings        `db:"audience"`
	UserinfoClaims Strings        `db:"userinfo_claims"` // claims asked for by name for userinfo
	AuthTime       sql.NullTime   `db:"auth_time"`       // when the user proved the factors
	CreatedAt      time.Time      `db:"created_at"`
	ExpiresAt      time.Time      `db:"expires_at"`
	RevokedAt      sql.NullTime   `db:"revoked_at"`
}

// Active reports whether the token is neither expired nor revoked at now.
func (t *AccessToken) Active(now time.Time) bool {
	return !t.RevokedAt.Valid && now.Before(t.ExpiresAt)
}

const accessTokenColumns = `id, client_id, COALESCE(user_id, '') AS user_id, auth_request_id, family_id, session_id, scopes, audience,
	created_at, expires_at, revoked_at, userinfo_claims, auth_time`

// CreateAccessToken stores a new access token. The caller sets the ID and
// ExpiresAt.
func (d *DB) CreateAccessToken(ctx context.Context, t *AccessToken) error {
	if err := d.insertAccess(ctx, d.w, t); err != nil {
		return fmt.Errorf("create access token: %w", err)
	}
	return nil
}

func (d *DB) insertAccess(ctx context.Context, q queryer, t *AccessToken) error {
	t.CreatedAt = d.Now()
	const insert = `INSERT INTO access_tokens (id, client_id, user_id, auth_request_id, family_id, session_id, scopes, audience,
		created_at, expires_at, userinfo_claims, auth_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	user := NullString{String: t.UserID, Valid: t.UserID != ""}
	_, err := d.exec(ctx, q, insert, t.ID, t.ClientID, user, t.AuthRequestID, t.FamilyID, t.SessionID, t.Scopes,
		t.Audience, t.CreatedAt, t.ExpiresAt.UTC(), t.UserinfoClaims, t.AuthTime)
	return err
}

// GetAccessToken returns the access token with this ID.
func (d *DB) GetAccessToken(ctx context.Context, id string) (*AccessToken, error) {
	var t AccessToken
	if err := d.get(ctx, d.r, &t, `SELECT `+accessTokenColumns+` FROM access_tokens WHERE id = ?`, id); err != nil {
		return nil, fmt.Errorf("get access token: %w", err)
	}
	return &t, nil
}

// RevokeAccessToken revokes one access token. Revoking an unknown or
// already revoked token is not an error.
func (d *DB) RevokeAccessToken(ctx context.Context, id string) error {
	if _, err := d.exec(ctx, d.w, `UPDATE access_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, d.Now(), id); err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	return nil
}

// RevokeAuthRequestTokens revokes the whole grant of one authorization
// request (for instance when its code is replayed): the access tokens its
// code exchange issued, every refresh-token family started from it, and
// every access token those families issued since, in one transaction. It
// first marks the request replayed, so a first exchange still minting its
// tokens learns of it in SettleRedemption. It returns how many tokens it
// revoked.
func (d *DB) RevokeAuthRequestTokens(ctx context.Context, authRequestID string) (int64, error) {
	const families = `SELECT family_id FROM refresh_tokens WHERE auth_request_id = ?`
	var total int64
	err := d.tx(ctx, func(q queryer) error {
		now := d.Now()
		if _, err := d.exec(ctx, q, `UPDATE auth_requests SET error_code = ? WHERE id = ?`, codeReplayed, authRequestID); err != nil {
			return err
		}
		n, err := d.exec(ctx, q, `UPDATE refresh_tokens SET revoked_at = ? WHERE family_id IN (`+families+`) AND revoked_at IS NULL`,
			now, authRequestID)
		if err != nil {
			return err
		}
		m, err := d.exec(ctx, q, `UPDATE access_tokens SET revoked_at = ?
			WHERE (auth_request_id = ? OR family_id IN (`+families+`)) AND revoked_at IS NULL`, now, authRequestID, authRequestID)
		total = n + m
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("revoke tokens of auth request: %w", err)
	}
	return total, nil
}

// codeReplayed marks an authorization request whose code came back.
const codeReplayed = "code_replayed"

// SettleRedemption ends a code exchange once its tokens are stored: it
// fails with ErrCodeReused if the code was replayed meanwhile, and the
// caller must then revoke the grant (RevokeAuthRequestTokens) and refuse.
// Without it a replay racing the first exchange could revoke the grant
// before its tokens exist, and miss them. The statement writes the row, so
// it waits for a replay's revocation in progress (which marks the row
// first) and then sees its mark; a revocation that starts after it
// commits finds the tokens stored.
func (d *DB) SettleRedemption(ctx context.Context, authRequestID string) error {
	n, err := d.exec(ctx, d.w, `UPDATE auth_requests SET error_code = error_code WHERE id = ? AND error_code <> ?`,
		authRequestID, codeReplayed)
	if err == nil && n == 0 {
		err = ErrCodeReused
	}
	if err != nil {
		return fmt.Errorf("settle code redemption: %w", err)
	}
	return nil
}
