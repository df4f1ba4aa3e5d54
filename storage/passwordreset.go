package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PasswordReset is a forgot-password link sent to a user's email address.
// It is single-use and short-lived; the first browser to open it owns it;
// the user proves a second factor on it before choosing a new password.
type PasswordReset struct {
	ID            string         `db:"id"`
	TokenMAC      []byte         `db:"token_mac"` // a keyed MAC of the link's token; never the token
	UserID        string         `db:"user_id"`
	AuthRequestID sql.NullString `db:"auth_request_id"` // the sign-in the user came from
	BindingHash   []byte         `db:"binding_hash"`    // the browser that opened the link first
	CodeMAC       []byte         `db:"code_mac"`        // a code texted for the link
	CodeExpiresAt sql.NullTime   `db:"code_expires_at"`
	CodeSentAt    sql.NullTime   `db:"code_sent_at"`
	Failures      int            `db:"failures"` // wrong codes, counted before they are checked
	CreatedAt     time.Time      `db:"created_at"`
	ExpiresAt     time.Time      `db:"expires_at"`
	FactorAt      sql.NullTime   `db:"factor_at"` // when the second factor was proven
	UsedAt        sql.NullTime   `db:"used_at"`   // when the new password was set, or the link voided
}

const resetColumns = `id, token_mac, user_id, auth_request_id, binding_hash, code_mac, code_expires_at, code_sent_at,
	failures, created_at, expires_at, factor_at, used_at`

// CreatePasswordReset stores a new link; the caller sets ID, TokenMAC,
// UserID, AuthRequestID and ExpiresAt. A user's links are independent (a
// request by someone else must not end the one the user is using); how
// many there can be is bounded by the sends' limits, and using one ends
// the others (UsePasswordReset).
func (d *DB) CreatePasswordReset(ctx context.Context, r *PasswordReset) error {
	r.CreatedAt = d.Now()
	const q = `INSERT INTO password_resets (id, token_mac, user_id, auth_request_id, failures, created_at, expires_at)
		VALUES (?, ?, ?, ?, 0, ?, ?)`
	if _, err := d.exec(ctx, d.w, q, r.ID, r.TokenMAC, r.UserID, r.AuthRequestID, r.CreatedAt, r.ExpiresAt.UTC()); err != nil {
		return fmt.Errorf("create password reset: %w", err)
	}
	return nil
}

// PasswordResetByToken returns the link whose token MAC is mac.
func (d *DB) PasswordResetByToken(ctx context.Context, mac []byte) (*PasswordReset, error) {
	var r PasswordReset
	if err := d.get(ctx, d.r, &r, `SELECT `+resetColumns+` FROM password_resets WHERE token_mac = ?`, mac); err != nil {
		return nil, fmt.Errorf("get password reset: %w", err)
	}
	return &r, nil
}

// BindPasswordReset binds a link to the first browser that opens it and
// returns the binding it holds now: binding if this browser was first.
func (d *DB) BindPasswordReset(ctx context.Context, id string, binding []byte) ([]byte, error) {
	if _, err := d.exec(ctx, d.w, `UPDATE password_resets SET binding_hash = ? WHERE id = ? AND binding_hash IS NULL`, binding, id); err != nil {
		return nil, fmt.Errorf("bind password reset: %w", err)
	}
	var bound []byte
	if err := d.get(ctx, d.w, &bound, `SELECT binding_hash FROM password_resets WHERE id = ?`, id); err != nil {
		return nil, fmt.Errorf("bind password reset: %w", err)
	}
	return bound, nil
}

// SetPasswordResetCode stores the MAC of a code texted for the link, until
// expiresAt, and when it was sent (for the resend cooldown).
func (d *DB) SetPasswordResetCode(ctx context.Context, id string, mac []byte, expiresAt time.Time) error {
	const q = `UPDATE password_resets SET code_mac = ?, code_expires_at = ?, code_sent_at = ? WHERE id = ? AND used_at IS NULL`
	if _, err := d.exec(ctx, d.w, q, mac, expiresAt.UTC(), d.Now(), id); err != nil {
		return fmt.Errorf("set password reset code: %w", err)
	}
	return nil
}

// ReservePasswordResetGuess counts a code guess on the link before it is
// checked, in one statement, so concurrent guesses never get more than max
// checked. It returns the link's count with this guess, or false when the
// link has no tries left (or is used).
func (d *DB) ReservePasswordResetGuess(ctx context.Context, id string, max int) (int, bool, error) {
	const q = `UPDATE password_resets SET failures = failures + 1 WHERE id = ? AND failures < ? AND used_at IS NULL
		RETURNING failures`
	var n int
	err := d.get(ctx, d.w, &n, q, id, max)
	if errors.Is(err, ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reserve password reset guess: %w", err)
	}
	return n, true, nil
}

// ReleasePasswordResetGuess gives back a reserved guess that was right or
// never checked.
func (d *DB) ReleasePasswordResetGuess(ctx context.Context, id string) error {
	const q = `UPDATE password_resets SET failures = failures - 1 WHERE id = ? AND failures > 0`
	if _, err := d.exec(ctx, d.w, q, id); err != nil {
		return fmt.Errorf("release password reset guess: %w", err)
	}
	return nil
}

// ProvePasswordResetFactor records that the link's user proved a second
// factor; ErrNotFound if the link is used or expired.
func (d *DB) ProvePasswordResetFactor(ctx context.Context, id string) error {
	const q = `UPDATE password_resets SET factor_at = ?, code_mac = NULL WHERE id = ? AND used_at IS NULL AND expires_at > ?`
	now := d.Now()
	n, err := d.exec(ctx, d.w, q, now, id, now)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("prove password reset factor: %w", err)
	}
	return nil
}

// UsePasswordReset spends a link whose second factor was proven, and ends
// the user's other links: only the first call on any of them succeeds,
// before the link expires; ErrNotFound otherwise.
func (d *DB) UsePasswordReset(ctx context.Context, id string) error {
	err := d.tx(ctx, func(q queryer) error {
		now := d.Now()
		const use = `UPDATE password_resets SET used_at = ?
			WHERE id = ? AND used_at IS NULL AND factor_at IS NOT NULL AND expires_at > ?`
		n, err := d.exec(ctx, q, use, now, id, now)
		if err == nil && n == 0 {
			err = ErrNotFound
		}
		if err != nil {
			return err
		}
		const others = `UPDATE password_resets SET used_at = ?
			WHERE user_id = (SELECT user_id FROM password_resets WHERE id = ?) AND used_at IS NULL`
		_, err = d.exec(ctx, q, others, now, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("use password reset: %w", err)
	}
	return nil
}
