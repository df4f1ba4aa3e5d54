package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// States of a signing key.
const (
	KeyNext    = "next"    // published, not yet signing
	KeyActive  = "active"  // signing; the schema allows exactly one
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
}

// SigningKeyAAD is the additional data a private key is sealed with.
func SigningKeyAAD(kid string) []byte {
	return []byte("signing_keys.private_sealed:" + kid)
}

const keyColumns = `id, algorithm, private_sealed, public_jwk, state, created_at, activated_at, retired_at`

// CreateSigningKey stores a key. Creating a second active key fails with
// ErrConflict, which is how two instances starting at once agree on one.
func (d *DB) CreateSigningKey(ctx context.Context, k *SigningKey) error {
	k.CreatedAt = d.Now()
	if k.State == KeyActive {
		k.ActivatedAt = sql.NullTime{Time: k.CreatedAt, Valid: true}
	}
	const q = `INSERT INTO signing_keys (` + keyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	_, err := d.exec(ctx, d.db, q, k.ID, k.Algorithm, k.PrivateSealed, k.PublicJWK, k.State, k.CreatedAt, k.ActivatedAt, k.RetiredAt)
	if err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	return nil
}

// ActiveSigningKey returns the key that signs now, or ErrNotFound.
func (d *DB) ActiveSigningKey(ctx context.Context) (*SigningKey, error) {
	var k SigningKey
	if err := d.get(ctx, d.db, &k, `SELECT `+keyColumns+` FROM signing_keys WHERE state = 'active'`); err != nil {
		return nil, fmt.Errorf("active signing key: %w", err)
	}
	return &k, nil
}

// ListSigningKeys returns every stored key, newest first.
func (d *DB) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	var out []SigningKey
	if err := d.db.SelectContext(ctx, &out, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at DESC, id`); err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return out, nil
}
