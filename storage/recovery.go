package storage

import (
	"context"
	"fmt"
	"time"
)

// ReplaceRecoveryCodes gives the user a new set of recovery codes (their
// keyed MACs), voiding every earlier one.
func (d *DB) ReplaceRecoveryCodes(ctx context.Context, userID string, macs [][]byte) error {
	err := d.tx(ctx, func(q queryer) error {
		if _, err := d.exec(ctx, q, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
			return err
		}
		now := d.Now()
		for _, m := range macs {
			if _, err := d.exec(ctx, q, `INSERT INTO recovery_codes (user_id, code_mac, created_at) VALUES (?, ?, ?)`, userID, m, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replace recovery codes: %w", err)
	}
	return nil
}

// UseRecoveryCode spends a recovery code and reports whether it was an
// unused code of the user's. Check and spend are one statement, so a code
// works once across all instances.
func (d *DB) UseRecoveryCode(ctx context.Context, userID string, mac []byte) (bool, error) {
	n, err := d.exec(ctx, d.w, `UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_mac = ? AND used_at IS NULL`,
		d.Now(), userID, mac)
	if err != nil {
		return false, fmt.Errorf("use recovery code: %w", err)
	}
	return n == 1, nil
}

// RecoveryCodesLeft counts the user's unused recovery codes.
func (d *DB) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int
	if err := d.get(ctx, d.r, &n, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`, userID); err != nil {
		return 0, fmt.Errorf("count recovery codes: %w", err)
	}
	return n, nil
}

// SetPendingTOTP keeps a sealed TOTP secret a signed-in user is adding,
// until its first code confirms it or it expires.
func (d *DB) SetPendingTOTP(ctx context.Context, userID string, sealed []byte, expiresAt time.Time) error {
	const q = `INSERT INTO pending_totp (user_id, secret_sealed, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, expires_at = excluded.expires_at`
	if _, err := d.exec(ctx, d.w, q, userID, sealed, expiresAt.UTC()); err != nil {
		return fmt.Errorf("set pending TOTP: %w", err)
	}
	return nil
}

// PendingTOTP returns the user's unexpired pending secret.
func (d *DB) PendingTOTP(ctx context.Context, userID string) ([]byte, error) {
	var sealed []byte
	q := `SELECT secret_sealed FROM pending_totp WHERE user_id = ? AND expires_at > ?`
	if err := d.get(ctx, d.r, &sealed, q, userID, d.Now()); err != nil {
		return nil, fmt.Errorf("get pending TOTP: %w", err)
	}
	return sealed, nil
}

// DeletePendingTOTP forgets a pending secret.
func (d *DB) DeletePendingTOTP(ctx context.Context, userID string) error {
	if _, err := d.exec(ctx, d.w, `DELETE FROM pending_totp WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("delete pending TOTP: %w", err)
	}
	return nil
}

// PendingTOTPAAD binds a pending self-service secret to its user.
func PendingTOTPAAD(userID string) []byte {
	return []byte("pending_totp.secret_sealed:" + userID)
}
