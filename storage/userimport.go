package storage

import (
	"context"
	"fmt"
)

// ReplacePasswordHash swaps a user's password hash for a new one if the
// stored hash is still old, and reports whether it did: the login's
// re-hash of an imported (or outdated) hash after a successful sign-in.
// The compare and the swap are one statement, so a password set meanwhile
// is never overwritten. Nothing a client sees changes, so the version
// (the management API's ETag) stays.
func (d *DB) ReplacePasswordHash(ctx context.Context, userID, old, hash string) (bool, error) {
	const q = `UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?`
	n, err := d.exec(ctx, d.w, q, hash, userID, old)
	if err != nil {
		return false, fmt.Errorf("replace password hash of user %s: %w", userID, err)
	}
	return n == 1, nil
}
