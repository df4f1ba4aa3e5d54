package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// States of a signing key.
const (
	KeyNext    = "next"    // published, not yet signing
	KeyActive  = "active"  // signing; the schema allows one per algorithm
	KeyRetired = "retired" // no longer signing, published while its tokens live
)

// SigningKey is a token-signing key pair. The private half is sealed by the
// caller (AAD bound to table, column and key ID).
type SigningKey struct {
	ID            string       `db:"id"`
	Algorithm     string       `db:"algorithm"`
	PrivateSealed []byte       `db:"private_sealed"`
	PublicJWK     string       `db:"public_jwk"`
	State         string       `db:"state"`
	CreatedAt     time.Time    `db:"created_at"`
	ActivatedAt   sql.NullTime `db:"activated_at"`
	RetiredAt     sql.NullTime `db:"retired_at"`
	ActivateAfter sql.NullTime `db:"activate_after"` // a next key signs from then on
	PublishUntil  sql.NullTime `db:"publish_until"`  // a retired key is published until then
	Default       bool         `db:"is_default"`     // signs for clients that pin no algorithm (a next key: once it signs)
}

// Signing algorithms stile can sign with (JOSE names). RS256 is the default
// of a new installation, for compatibility.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// SigningAlgorithms lists them.
var SigningAlgorithms = []string{AlgRS256, AlgES256, AlgEdDSA}

// Published reports whether verifiers must still be able to find the key.
func (k *SigningKey) Published(now time.Time) bool {
	return k.State != KeyRetired || (k.PublishUntil.Valid && now.Before(k.PublishUntil.Time))
}

// SigningKeyAAD is the additional data a private key is sealed with.
func SigningKeyAAD(kid string) []byte {
	return []byte("signing_keys.private_sealed:" + kid)
}

const keyColumns = `id, algorithm, private_sealed, public_jwk, state, created_at, activated_at, retired_at,
	activate_after, publish_until, is_default`

// CreateSigningKey stores a key. A second active or next key of one
// algorithm, or a second active default, fails with ErrConflict: that is how
// two instances starting at once agree on one.
func (d *DB) CreateSigningKey(ctx context.Context, k *SigningKey) error {
	k.CreatedAt = d.Now()
	if k.State == KeyActive {
		k.ActivatedAt = sql.NullTime{Time: k.CreatedAt, Valid: true}
	}
	const q = `INSERT INTO signing_keys (` + keyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	_, err := d.exec(ctx, d.w, q, k.ID, k.Algorithm, k.PrivateSealed, k.PublicJWK, k.State, k.CreatedAt, k.ActivatedAt,
		k.RetiredAt, k.ActivateAfter, k.PublishUntil, k.Default)
	d.cachedTablesChanged(ctx) // and keys: every cache of this database
	if err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	return nil
}

// ActiveSigningKey returns the default key, the one that signs for
// clients that pin no algorithm, or ErrNotFound.
func (d *DB) ActiveSigningKey(ctx context.Context) (*SigningKey, error) {
	var k SigningKey
	const q = `SELECT ` + keyColumns + ` FROM signing_keys WHERE state = 'active' AND is_default = TRUE`
	if err := d.get(ctx, d.r, &k, q); err != nil {
		return nil, fmt.Errorf("active signing key: %w", err)
	}
	return &k, nil
}

// ListSigningKeys returns every stored key, newest first.
func (d *DB) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	var out []SigningKey
	if err := d.sel(ctx, d.r, &out, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at DESC, id`); err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return out, nil
}

// PinnedAlgorithms returns the distinct algorithms clients pin.
func (d *DB) PinnedAlgorithms(ctx context.Context) ([]string, error) {
	var out []string
	const q = `SELECT DISTINCT id_token_signed_response_alg FROM clients WHERE id_token_signed_response_alg <> '' ORDER BY 1`
	if err := d.sel(ctx, d.r, &out, q); err != nil {
		return nil, fmt.Errorf("pinned signing algorithms: %w", err)
	}
	return out, nil
}

// PromoteDueKey lets a next key whose activate_after has come sign. It
// retires the active key of its algorithm (taking over its default, if it
// was the default); if it is a default key, the
// previous default stops being the default, and retires too unless a client
// pins its algorithm. Retired keys stay published until now+publishFor so
// every token they signed can still be verified. It reports whether it
// promoted. Two instances may race to promote: the transaction makes one of
// them a no-op.
func (d *DB) PromoteDueKey(ctx context.Context, publishFor time.Duration) (bool, error) {
	now := d.Now()
	// Nothing is due almost always: look on the read pool first, rather
	// than take SQLite's write lock for a read on every call.
	var due int
	if err := d.get(ctx, d.r, &due, `SELECT COUNT(*) FROM signing_keys WHERE state = 'next' AND activate_after <= ?`, now); err != nil {
		return false, fmt.Errorf("look for a due signing key: %w", err)
	}
	if due == 0 {
		return false, nil
	}
	// On PostgreSQL the next key's row is locked: a second instance
	// promoting at once waits, then finds it active and does nothing.
	// Without the lock it went on to retire the key just promoted, leaving
	// no default (two instances' maintenance passes at once).
	pick := `SELECT ` + keyColumns + ` FROM signing_keys
			WHERE state = 'next' AND activate_after <= ? ORDER BY activate_after, id LIMIT 1`
	if d.dialect == Postgres {
		pick += ` FOR UPDATE`
	}
	promoted := false
	err := d.tx(ctx, func(q queryer) error {
		var next SigningKey
		err := d.get(ctx, q, &next, pick, now)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		// A key replacing the default's algorithm's key inherits the default.
		var inherits int
		if err := d.get(ctx, q, &inherits, `SELECT COUNT(*) FROM signing_keys
			WHERE state = 'active' AND is_default = TRUE AND algorithm = ?`, next.Algorithm); err != nil {
			return err
		}
		const retire = `UPDATE signing_keys SET state = 'retired', is_default = FALSE, retired_at = ?, publish_until = ?
			WHERE state = 'active' AND `
		if _, err := d.exec(ctx, q, retire+`algorithm = ?`, now, now.Add(publishFor), next.Algorithm); err != nil {
			return err
		}
		if next.Default {
			// The old default's algorithm is kept only while a client pins it.
			if _, err := d.exec(ctx, q, retire+`is_default = TRUE AND algorithm NOT IN
				(SELECT id_token_signed_response_alg FROM clients)`, now, now.Add(publishFor)); err != nil {
				return err
			}
			if _, err := d.exec(ctx, q, `UPDATE signing_keys SET is_default = FALSE WHERE state = 'active'`); err != nil {
				return err
			}
		}
		n, err := d.exec(ctx, q, `UPDATE signing_keys SET state = 'active', activated_at = ?, is_default = ?
			WHERE id = ? AND state = 'next'`, now, next.Default || inherits > 0, next.ID)
		promoted = n == 1
		return err
	})
	if promoted {
		d.cachedTablesChanged(ctx)
	}
	if err != nil {
		return false, fmt.Errorf("promote signing key: %w", err)
	}
	return promoted, nil
}
