package storage

import (
	"context"
	"fmt"
	"time"
)

// Consent is what a user allowed a third-party client: the scopes it may
// have without asking again.
type Consent struct {
	UserID    string    `db:"user_id" json:"-"`
	ClientID  string    `db:"client_id" json:"client_id"`
	Scopes    Strings   `db:"scopes" json:"scopes"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
	UpdatedAt time.Time `db:"updated_at" json:"updated_at"`
}

// Covers reports whether the consent includes every scope in scopes.
func (c *Consent) Covers(scopes []string) bool {
	for _, s := range scopes {
		if !c.Scopes.Contains(s) {
			return false
		}
	}
	return true
}

const consentColumns = `user_id, client_id, scopes, created_at, updated_at`

// GetConsent returns the user's consent for a client, or ErrNotFound.
func (d *DB) GetConsent(ctx context.Context, userID, clientID string) (*Consent, error) {
	var c Consent
	q := `SELECT ` + consentColumns + ` FROM consents WHERE user_id = ? AND client_id = ?`
	if err := d.get(ctx, d.r, &c, q, userID, clientID); err != nil {
		return nil, fmt.Errorf("get consent: %w", err)
	}
	return &c, nil
}

// SaveConsent records (or replaces) the scopes a user allowed a client.
func (d *DB) SaveConsent(ctx context.Context, userID, clientID string, scopes []string) error {
	now := d.Now()
	const q = `INSERT INTO consents (` + consentColumns + `) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at`
	if _, err := d.exec(ctx, d.w, q, userID, clientID, Strings(scopes), now, now); err != nil {
		return fmt.Errorf("save consent: %w", err)
	}
	return nil
}

// ListConsents returns the user's consents, by client.
func (d *DB) ListConsents(ctx context.Context, userID string) ([]Consent, error) {
	var out []Consent
	q := `SELECT ` + consentColumns + ` FROM consents WHERE user_id = ? ORDER BY client_id`
	if err := d.sel(ctx, d.r, &out, q, userID); err != nil {
		return nil, fmt.Errorf("list consents: %w", err)
	}
	return out, nil
}

// WithdrawConsent forgets a user's consent for a client and revokes the
// refresh tokens (and their access tokens) the client holds for the user:
// withdrawing must take back what was given.
func (d *DB) WithdrawConsent(ctx context.Context, userID, clientID string) error {
	err := d.tx(ctx, func(q queryer) error {
		n, err := d.exec(ctx, q, `DELETE FROM consents WHERE user_id = ? AND client_id = ?`, userID, clientID)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		now := d.Now()
		for _, table := range []string{"refresh_tokens", "access_tokens"} {
			stmt := `UPDATE ` + table + ` SET revoked_at = ? WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL`
			if _, err := d.exec(ctx, q, stmt, now, userID, clientID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("withdraw consent: %w", err)
	}
	return nil
}
