package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The states of a master key in master_keys (migration 0019). The current
// key is not a row: its check value is stile_meta's master_key_check.
const (
	MasterOld     = "old"     // a change is open: the key being replaced
	MasterNew     = "new"     // a change is open: the key replacing it
	MasterRetired = "retired" // replaced by a finished change; its check value only
)

// Meta names the master key uses in stile_meta.
const (
	MetaMasterCheck = "master_key_check" // the current key's check value
	MetaMasterRoot  = "master_root"      // the derivation root, sealed under the newest key
)

// MasterKey is a master key the database knows besides the current one.
type MasterKey struct {
	ID         []byte       `db:"key_id"`
	CheckValue []byte       `db:"check_value"`
	State      string       `db:"state"`
	Wrapped    []byte       `db:"wrapped"` // this key sealed under the other key of the open change
	CreatedAt  time.Time    `db:"created_at"`
	RetiredAt  sql.NullTime `db:"retired_at"`
}

// MasterWrapAAD binds a wrapped master key to its row.
func MasterWrapAAD(keyID []byte) []byte {
	return fmt.Appendf(nil, "master_keys.wrapped:%x", keyID)
}

// MasterRootAAD binds the sealed derivation root to its row.
func MasterRootAAD() []byte { return []byte("stile_meta.value:" + MetaMasterRoot) }

// ListMasterKeys returns every row of master_keys: the open change's two
// keys, if any, and the retired ones.
func (d *DB) ListMasterKeys(ctx context.Context) ([]MasterKey, error) {
	var ks []MasterKey
	const q = `SELECT key_id, check_value, state, wrapped, created_at, retired_at FROM master_keys ORDER BY created_at`
	if err := d.sel(ctx, d.w, &ks, q); err != nil {
		return nil, fmt.Errorf("list master keys: %w", err)
	}
	return ks, nil
}

// StartMasterChange records a change from old to next in one transaction:
// both keys, each wrapped under the other, and the derivation root sealed
// under next. A change already open is ErrConflict.
func (d *DB) StartMasterChange(ctx context.Context, old, next MasterKey, root []byte) error {
	const ins = `INSERT INTO master_keys (key_id, check_value, state, wrapped, created_at) VALUES (?, ?, ?, ?, ?)`
	const meta = `INSERT INTO stile_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`
	now := d.Now()
	err := d.tx(ctx, func(q queryer) error {
		for _, k := range []MasterKey{old, next} {
			if _, err := d.exec(ctx, q, ins, k.ID, k.CheckValue, k.State, k.Wrapped, now); err != nil {
				return err
			}
		}
		_, err := d.exec(ctx, q, meta, MetaMasterRoot, root)
		return err
	})
	if err != nil {
		return fmt.Errorf("start the master key change: %w", err)
	}
	return nil
}

// FinishMasterChange ends the open change: the new key's check value
// becomes the current one, the old key is retired and both wrapped copies
// are gone, so the old key file opens nothing any more.
func (d *DB) FinishMasterChange(ctx context.Context, oldID, newID, newCheck []byte) error {
	err := d.tx(ctx, func(q queryer) error {
		if _, err := d.exec(ctx, q, `UPDATE stile_meta SET value = ? WHERE name = ?`, newCheck, MetaMasterCheck); err != nil {
			return err
		}
		n, err := d.exec(ctx, q, `UPDATE master_keys SET state = ?, wrapped = NULL, retired_at = ? WHERE key_id = ? AND state = ?`,
			MasterRetired, d.Now(), oldID, MasterOld)
		if err != nil {
			return err
		}
		if n != 1 {
			return ErrNotFound
		}
		_, err = d.exec(ctx, q, `DELETE FROM master_keys WHERE key_id = ? AND state = ?`, newID, MasterNew)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish the master key change: %w", err)
	}
	return nil
}

// SealedColumn is a column whose values keys.Sealer sealed, with the AAD
// each row's value is bound to. Row is the column that identifies the row
// (the one the AAD names).
type SealedColumn struct {
	Kind               string // what it holds, for people
	Table, Column, Row string
	AAD                func(row string) []byte
}

// SealedColumns are every column that holds a sealed value. A new one
// belongs here, or a master key rotation leaves it under the old key (and
// --finish refuses until it is listed).
var SealedColumns = []SealedColumn{
	{"TOTP secrets", "totp_enrolments", "secret_sealed", "user_id", TOTPSecretAAD},
	{"signing keys", "signing_keys", "private_sealed", "id", SigningKeyAAD},
	{"pending self-service TOTP secrets", "pending_totp", "secret_sealed", "user_id", PendingTOTPAAD},
	{"enrolment links", "enrollment_links", "secret_sealed", "id", EnrollmentSecretAAD},
	{"login transactions", "login_transactions", "pending_secret", "id", PendingSecretAAD},
	{"sign-ups", "signups", "pending_secret", "id", SignupSecretAAD},
}

// SealedValue is one row's sealed value.
type SealedValue struct {
	Row    string `db:"row_id"`
	Sealed []byte `db:"sealed"`
}

// ListSealed returns up to limit of c's values in rows after the row
// after ("" : from the first), in row order: one batch of a walk over the
// whole column.
func (d *DB) ListSealed(ctx context.Context, c SealedColumn, after string, limit int) ([]SealedValue, error) {
	q := fmt.Sprintf(`SELECT %[1]s AS row_id, %[2]s AS sealed FROM %[3]s WHERE %[2]s IS NOT NULL AND %[1]s > ? ORDER BY %[1]s LIMIT ?`,
		c.Row, c.Column, c.Table)
	var vs []SealedValue
	if err := d.sel(ctx, d.w, &vs, q, after, limit); err != nil {
		return nil, fmt.Errorf("list %s.%s: %w", c.Table, c.Column, err)
	}
	return vs, nil
}

// SealedChange replaces one row's sealed value, if it is still Old.
type SealedChange struct {
	Row      string
	Old, New []byte
}

// ReplaceSealed applies a batch of changes to c in one transaction and
// returns how many it made. A row whose value changed since it was read (a
// new secret, sealed by a serving instance) or that is gone is left alone.
func (d *DB) ReplaceSealed(ctx context.Context, c SealedColumn, changes []SealedChange) (int, error) {
	q := fmt.Sprintf(`UPDATE %[1]s SET %[2]s = ? WHERE %[3]s = ? AND %[2]s = ?`, c.Table, c.Column, c.Row)
	done := 0
	err := d.tx(ctx, func(tq queryer) error {
		done = 0
		for _, ch := range changes {
			n, err := d.exec(ctx, tq, q, ch.New, ch.Row, ch.Old)
			if err != nil {
				return err
			}
			done += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("re-seal %s.%s: %w", c.Table, c.Column, err)
	}
	return done, nil
}
