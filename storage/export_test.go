package storage

import (
	"context"
	"time"
)

// WithBusyTimeout sets SQLite's busy timeout, so a test can show that
// writers of one process never wait in it.
func WithBusyTimeout(d time.Duration) Option {
	return func(db *DB) { db.busyTimeout = d }
}

// ExecOnReadPool runs a statement on the read pool, as a write sent there
// by mistake would.
func (d *DB) ExecOnReadPool(ctx context.Context, query string, args ...any) error {
	_, err := d.r.ExecContext(ctx, d.q(query), args...)
	return err
}

// CachedStatements counts the prepared statements of the write and the
// read pool (the same cache on PostgreSQL).
func (d *DB) CachedStatements() (write, read int) {
	return int(d.ws.n.Load()), int(d.rs.n.Load())
}
