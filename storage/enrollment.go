package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// EnrollmentLink is a single-use link an operator hands to a user so they
// can set up their authenticator app themselves: the user proves the
// password on the link, sees a new secret once, and confirms it with a code.
type EnrollmentLink struct {
	ID           string       `db:"id"`
	TokenHash    []byte       `db:"token_hash"`
	UserID       string       `db:"user_id"`
	BindingHash  []byte       `db:"binding_hash"`  // the browser that proved the password
	SecretSealed []byte       `db:"secret_sealed"` // the pending secret, shown to that browser only
	CreatedAt    time.Time    `db:"created_at"`
	ExpiresAt    time.Time    `db:"expires_at"`
	UsedAt       sql.NullTime `db:"used_at"`
}

// EnrollmentSecretAAD binds a pending secret to its link.
func EnrollmentSecretAAD(linkID string) []byte {
	return []byte("enrollment_links.secret_sealed:" + linkID)
}

const linkColumns = `id, token_hash, user_id, binding_hash, secret_sealed, created_at, expires_at, used_at`

// CreateEnrollmentLink stores a link; the caller sets ID, TokenHash, UserID
// and ExpiresAt. Earlier unused links of the user stop working.
func (d *DB) CreateEnrollmentLink(ctx context.Context, l *EnrollmentLink) error {
	l.CreatedAt = d.Now()
	err := d.tx(ctx, func(q queryer) error {
		if _, err := d.exec(ctx, q, `UPDATE enrollment_links SET used_at = ? WHERE user_id = ? AND used_at IS NULL`,
			l.CreatedAt, l.UserID); err != nil {
			return err
		}
		const ins = `INSERT INTO enrollment_links (` + linkColumns + `) VALUES (?, ?, ?, NULL, NULL, ?, ?, NULL)`
		_, err := d.exec(ctx, q, ins, l.ID, l.TokenHash, l.UserID, l.CreatedAt, l.ExpiresAt.UTC())
		return err
	})
	if err != nil {
		return fmt.Errorf("create enrollment link: %w", err)
	}
	return nil
}

// EnrollmentLinkByToken returns the link whose token hash is hash.
func (d *DB) EnrollmentLinkByToken(ctx context.Context, hash []byte) (*EnrollmentLink, error) {
	var l EnrollmentLink
	if err := d.get(ctx, d.r, &l, `SELECT `+linkColumns+` FROM enrollment_links WHERE token_hash = ?`, hash); err != nil {
		return nil, fmt.Errorf("get enrollment link: %w", err)
	}
	return &l, nil
}

// ClaimEnrollmentLink binds an open link to the browser that proved the
// password and stores the secret shown to it. Only the first browser can
// claim a link; ErrNotFound otherwise.
func (d *DB) ClaimEnrollmentLink(ctx context.Context, id string, binding, sealedSecret []byte) error {
	const q = `UPDATE enrollment_links SET binding_hash = ?, secret_sealed = ?
		WHERE id = ? AND binding_hash IS NULL AND used_at IS NULL AND expires_at > ?`
	n, err := d.exec(ctx, d.w, q, binding, sealedSecret, id, d.Now())
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("claim enrollment link: %w", err)
	}
	return nil
}

// UseEnrollmentLink marks a link used; only the first call succeeds.
func (d *DB) UseEnrollmentLink(ctx context.Context, id string) error {
	n, err := d.exec(ctx, d.w, `UPDATE enrollment_links SET used_at = ? WHERE id = ? AND used_at IS NULL`, d.Now(), id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("use enrollment link: %w", err)
	}
	return nil
}
