package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// CreateRotationKey stores next, a next key that is to replace the active
// key replaces, if that key is still active, has signed since signedBy or
// earlier, and nothing waits to replace it yet: a next key of its
// algorithm, or for a default key any next default. It reports whether it
// stored next.
//
// Every instance runs the automatic rotation, so several may decide at
// once that a key is due. The checks and the insert are one transaction on
// the writer, so a stale read elsewhere cannot make a second next key: on
// SQLite the transaction holds the write lock from BEGIN; on PostgreSQL
// the replaced key's row is locked first, so two rotations (or a rotation
// and the promotion that retires that key) run one after the other, and
// the second sees what the first did. The unique index on next keys
// (migration 0007) stays the backstop.
func (d *DB) CreateRotationKey(ctx context.Context, next *SigningKey, replaces string, signedBy time.Time) (bool, error) {
	if next.State != KeyNext || !next.ActivateAfter.Valid {
		return false, fmt.Errorf("%w: a rotation key must be a next key with a time to sign from", ErrInvalid)
	}
	lock := `SELECT id FROM signing_keys WHERE id = ? AND state = 'active' AND COALESCE(activated_at, created_at) <= ?`
	if d.dialect == Postgres {
		lock += ` FOR UPDATE`
	}
	waiting := `SELECT COUNT(*) FROM signing_keys WHERE state = 'next' AND algorithm = ?`
	if next.Default {
		waiting = `SELECT COUNT(*) FROM signing_keys WHERE state = 'next' AND (algorithm = ? OR is_default = TRUE)`
	}
	created := false
	err := d.tx(ctx, func(q queryer) error {
		var id string
		err := d.get(ctx, q, &id, lock, replaces, signedBy)
		if errors.Is(err, ErrNotFound) {
			return nil // promoted, retired or rotated since it was read
		}
		if err != nil {
			return err
		}
		var n int
		if err := d.get(ctx, q, &n, waiting, next.Algorithm); err != nil || n > 0 {
			return err
		}
		next.CreatedAt = d.Now()
		const ins = `INSERT INTO signing_keys (` + keyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
		_, err = d.exec(ctx, q, ins, next.ID, next.Algorithm, next.PrivateSealed, next.PublicJWK, next.State, next.CreatedAt,
			next.ActivatedAt, next.RetiredAt, next.ActivateAfter, next.PublishUntil, next.Default)
		if errors.Is(err, ErrConflict) {
			return nil // another instance's next key, committed meanwhile
		}
		created = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("create rotation key: %w", err)
	}
	if created {
		d.cachedTablesChanged(ctx) // every instance publishes it
	}
	return created, nil
}

// keyRotationName is the stile_meta row where servers record their
// automatic rotation period, so the CLI can tell when keys are due.
const keyRotationName = "key_rotation"

// SetKeyRotation records the automatic rotation period a server runs
// with (0: off). The last server started wins: stile keys list reports it
// as such.
func (d *DB) SetKeyRotation(ctx context.Context, period time.Duration) error {
	const q = `INSERT INTO stile_meta (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`
	v := []byte(strconv.FormatInt(int64(period), 10) + " " + strconv.FormatInt(d.Now().Unix(), 10))
	if _, err := d.exec(ctx, d.w, q, keyRotationName, v); err != nil {
		return fmt.Errorf("record the key rotation period: %w", err)
	}
	return nil
}

// KeyRotation returns the period the last server started recorded, and
// when; ErrNotFound if none has.
func (d *DB) KeyRotation(ctx context.Context) (time.Duration, time.Time, error) {
	v, err := d.GetMeta(ctx, keyRotationName)
	if err != nil {
		return 0, time.Time{}, err
	}
	var period, at int64
	if _, err := fmt.Sscanf(string(v), "%d %d", &period, &at); err != nil {
		return 0, time.Time{}, fmt.Errorf("read the key rotation period %q: %w", v, err)
	}
	return time.Duration(period), time.Unix(at, 0).UTC(), nil
}
