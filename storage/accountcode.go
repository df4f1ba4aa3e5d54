package storage

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
)

// AccountCode is a code the account page sent: a step-up code to the
// user's address or number, or the code confirming a new email address
// (Target). Only its keyed MAC is stored.
type AccountCode struct {
	UserID    string    `db:"user_id"`
	Purpose   string    `db:"purpose"`
	Target    string    `db:"target"`
	CodeMAC   []byte    `db:"code_mac"`
	Tries     int       `db:"tries"`
	CreatedAt time.Time `db:"created_at"`
	ExpiresAt time.Time `db:"expires_at"`
}

// SetAccountCode stores the user's code for purpose, replacing an earlier
// one (and its count of wrong tries).
func (d *DB) SetAccountCode(ctx context.Context, c *AccountCode) error {
	const q = `INSERT INTO account_codes (user_id, purpose, target, code_mac, tries, created_at, expires_at)
		VALUES (?, ?, ?, ?, 0, ?, ?)
		ON CONFLICT (user_id, purpose) DO UPDATE SET target = excluded.target, code_mac = excluded.code_mac,
		tries = 0, created_at = excluded.created_at, expires_at = excluded.expires_at`
	if _, err := d.exec(ctx, d.w, q, c.UserID, c.Purpose, c.Target, c.CodeMAC, d.Now(), c.ExpiresAt.UTC()); err != nil {
		return fmt.Errorf("set account code: %w", err)
	}
	return nil
}

// AccountCodeFor returns the user's unexpired code for purpose.
func (d *DB) AccountCodeFor(ctx context.Context, userID, purpose string) (*AccountCode, error) {
	var c AccountCode
	q := `SELECT user_id, purpose, target, code_mac, tries, created_at, expires_at FROM account_codes
		WHERE user_id = ? AND purpose = ? AND expires_at > ?`
	if err := d.get(ctx, d.r, &c, q, userID, purpose, d.Now()); err != nil {
		return nil, fmt.Errorf("get account code: %w", err)
	}
	return &c, nil
}

// UseAccountCode checks mac against the user's unexpired code for purpose
// with at most maxTries wrong tries: right, the code is spent and returned;
// wrong, the try is counted (and the last try kills the code). Check and
// spend are one transaction, so a code works once across all instances.
func (d *DB) UseAccountCode(ctx context.Context, userID, purpose string, mac []byte, maxTries int) (*AccountCode, bool, error) {
	var c AccountCode
	ok := false
	err := d.tx(ctx, func(q queryer) error {
		sel := `SELECT user_id, purpose, target, code_mac, tries, created_at, expires_at FROM account_codes
			WHERE user_id = ? AND purpose = ? AND expires_at > ? AND tries < ?`
		if err := d.get(ctx, q, &c, sel, userID, purpose, d.Now(), maxTries); err != nil {
			return err
		}
		// Conditional writes: of two instances checking the same code at
		// once, one deletes it and the other finds nothing to delete.
		if subtle.ConstantTimeCompare(c.CodeMAC, mac) == 1 {
			n, err := d.exec(ctx, q, `DELETE FROM account_codes WHERE user_id = ? AND purpose = ? AND code_mac = ?`,
				userID, purpose, mac)
			ok = n == 1
			return err
		}
		_, err := d.exec(ctx, q, `UPDATE account_codes SET tries = tries + 1 WHERE user_id = ? AND purpose = ? AND tries < ?`,
			userID, purpose, maxTries)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("use account code: %w", err)
	}
	if !ok {
		return nil, false, nil
	}
	return &c, true, nil
}
