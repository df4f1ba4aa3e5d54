package storage

import (
	"context"
	"fmt"
)

// GetMeta returns a stored installation fact, or ErrNotFound.
func (d *DB) GetMeta(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	if err := d.get(ctx, d.r, &v, `SELECT value FROM stile_meta WHERE name = ?`, name); err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	return v, nil
}

// InsertMeta stores a fact once; if it is already set, ErrConflict.
func (d *DB) InsertMeta(ctx context.Context, name string, value []byte) error {
	if _, err := d.exec(ctx, d.w, `INSERT INTO stile_meta (name, value) VALUES (?, ?)`, name, value); err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	return nil
}
