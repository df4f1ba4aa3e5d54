package storage

import (
	"context"
	"fmt"
	"time"
)

// TOTP is a user's enrolled authenticator app. The secret is sealed by the
// caller (AES-GCM, bound to this table, column and user) before it gets here.
type TOTP struct {
	UserID       string    `db:"user_id"`
	SecretSealed []byte    `db:"secret_sealed"`
	LastStep     int64     `db:"last_step"` // the last accepted time step; only later ones are accepted
	CreatedAt    time.Time `db:"created_at"`
}

// TOTPSecretAAD is the additional data a TOTP secret is sealed with, so a
// sealed secret copied to another row or column does not open.
func TOTPSecretAAD(userID string) []byte {
	return []byte("totp_enrolments.secret_sealed:" + userID)
}

// SetTOTP enrols (or re-enrols) a user's authenticator, replacing any
// previous secret.
func (d *DB) SetTOTP(ctx context.Context, userID string, sealed []byte) error {
	const q = `INSERT INTO totp_enrolments (user_id, secret_sealed, last_step, created_at) VALUES (?, ?, 0, ?)
		ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, last_step = 0, created_at = excluded.created_at`
	if _, err := d.exec(ctx, d.w, q, userID, sealed, d.Now()); err != nil {
		return fmt.Errorf("set TOTP for user %s: %w", userID, err)
	}
	return nil
}

// GetTOTP returns a user's enrolment, or ErrNotFound if there is none.
func (d *DB) GetTOTP(ctx context.Context, userID string) (*TOTP, error) {
	var t TOTP
	const q = `SELECT user_id, secret_sealed, last_step, created_at FROM totp_enrolments WHERE user_id = ?`
	if err := d.get(ctx, d.r, &t, q, userID); err != nil {
		return nil, fmt.Errorf("get TOTP for user %s: %w", userID, err)
	}
	return &t, nil
}

// AcceptTOTPStep records step as used if it is later than every step used
// before, and reports whether it was. The check and the write are one
// statement, so two instances cannot both accept the same code.
func (d *DB) AcceptTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	n, err := d.exec(ctx, d.w, `UPDATE totp_enrolments SET last_step = ? WHERE user_id = ? AND last_step < ?`, step, userID, step)
	if err != nil {
		return false, fmt.Errorf("accept TOTP step for user %s: %w", userID, err)
	}
	return n == 1, nil
}

// DeleteTOTP removes a user's enrolment.
func (d *DB) DeleteTOTP(ctx context.Context, userID string) error {
	if _, err := d.exec(ctx, d.w, `DELETE FROM totp_enrolments WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("delete TOTP for user %s: %w", userID, err)
	}
	return nil
}
