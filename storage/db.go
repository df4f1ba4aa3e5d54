package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
)

// Dialect names a supported database.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is stile's store. It is safe for concurrent use.
//
// It holds two pools. w runs every transaction and every write; r runs
// reads outside transactions. On PostgreSQL they are the same pool. On
// SQLite w has exactly one connection, so concurrent writers queue in Go's
// pool (in order, cancellable by their context) instead of sleeping and
// retrying in busy_timeout, and r is a separate pool opened query_only,
// reading WAL snapshots while the writer works.
type DB struct {
	w, r        *sqlx.DB
	ws, rs      *stmtCache    // prepared statements of w and r (the same cache when w == r)
	wgate       chan struct{} // a slot per connection of w, so its waiters queue in order (see hold)
	rgate       chan struct{} // the same for r (the same gate when r == w)
	dialect     Dialect
	path        string // SQLite file, for the migration lock
	now         func() time.Time
	pool        PoolConfig
	busyTimeout time.Duration                      // SQLite: how long to wait for another process's write lock
	hook        atomic.Pointer[func(query string)] // sees every statement, for tests that count them
	cache       cache                              // clients in memory, once StartCache turns it on (cache.go)
}

// Option configures Open.
type Option func(*DB)

// WithClock makes the store read time from now instead of the wall clock,
// so tests can step expiries without waiting.
func WithClock(now func() time.Time) Option {
	return func(d *DB) { d.now = now }
}

// Open connects to the database named by rawURL: "sqlite:PATH" for an
// embedded SQLite file, or a "postgres://…" URL. It does not migrate.
func Open(ctx context.Context, rawURL string, opts ...Option) (*DB, error) {
	d := &DB{now: time.Now, busyTimeout: defaultBusyTimeout}
	for _, o := range opts {
		o(d)
	}
	var err error
	switch {
	case strings.HasPrefix(rawURL, "sqlite:"):
		d.dialect = SQLite
		d.path = strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "//")
		if d.path == "" {
			return nil, errors.New("open database: sqlite: needs a file path, e.g. sqlite:stile.db")
		}
		if err := createPrivate(d.path); err != nil {
			return nil, err
		}
		err = d.openSQLite()
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		d.dialect = Postgres
		err = d.openPostgres(rawURL)
	default:
		return nil, fmt.Errorf("open database: unsupported URL %q: use sqlite:PATH or postgres://…", redact(rawURL))
	}
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", d.dialect, err)
	}
	for _, p := range d.pools() {
		if err := p.PingContext(ctx); err != nil {
			d.Close()
			return nil, fmt.Errorf("connect to %s database %s: %w", d.dialect, redact(rawURL), err)
		}
	}
	return d, nil
}

// createPrivate creates a missing SQLite file readable by its owner only:
// it holds sealed secrets and password hashes. SQLite gives its WAL and
// shared-memory files the same mode. An existing file (or WAL, or
// shared-memory file) that group or others can read is refused, as the
// master key file is: using it silently would keep the hashes readable.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			if err := checkPrivate(p); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("create SQLite database %s: %w", path, err)
	}
	return f.Close()
}

// checkPrivate refuses a file group or others can read or write; a
// missing one is fine (SQLite creates the WAL with the database's mode).
func checkPrivate(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("SQLite database: %w", err)
	}
	if perm := fi.Mode().Perm(); fi.Mode().IsRegular() && perm&0o077 != 0 {
		return fmt.Errorf("SQLite database file %s has mode %04o: group or others can open it; run: chmod 600 %s", path, perm, path)
	}
	return nil
}

// redact hides a password in a database URL before it reaches a message.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Path is the SQLite file's path, or "" on PostgreSQL.
func (d *DB) Path() string { return d.path }

// Dialect reports which database this is.
func (d *DB) Dialect() Dialect { return d.dialect }

// Close closes the prepared statements and the connection pools.
func (d *DB) Close() error {
	d.stopCache()
	var errs []error
	for _, c := range []*stmtCache{d.ws, d.rs} {
		if c != nil {
			c.close()
		}
	}
	for _, p := range d.pools() {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// Stats is the write pool's statistics (on PostgreSQL, the one pool's),
// for metrics.
func (d *DB) Stats() sql.DBStats { return d.w.Stats() }

// ReadStats is the read pool's statistics; on PostgreSQL the same as
// Stats, since there reads and writes share one pool.
func (d *DB) ReadStats() sql.DBStats { return d.r.Stats() }

// SeparateReadPool reports whether reads have a pool of their own (SQLite).
func (d *DB) SeparateReadPool() bool { return d.r != d.w }

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.r.PingContext(ctx) }

// ServerVersion reports the database server's version string.
func (d *DB) ServerVersion(ctx context.Context) (string, error) {
	q := "SELECT version()"
	if d.dialect == SQLite {
		q = "SELECT 'SQLite ' || sqlite_version()"
	}
	var v string
	if err := d.get(ctx, d.r, &v, q); err != nil {
		return "", fmt.Errorf("read server version: %w", err)
	}
	return v, nil
}

// Now is the store's clock, truncated to what PostgreSQL keeps.
func (d *DB) Now() time.Time { return d.now().UTC().Truncate(time.Microsecond) }

// mapErr turns a unique-constraint violation into ErrConflict.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" {
		return fmt.Errorf("%w: %s", ErrConflict, pqErr.Constraint)
	}
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) {
		switch sqlErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %s", ErrConflict, sqlErr.Error())
		}
	}
	return err
}
