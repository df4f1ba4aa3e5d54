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
type DB struct {
	db      *sqlx.DB
	dialect Dialect
	path    string // SQLite file, for the migration lock
	now     func() time.Time
	cache   cache // clients in memory, once StartCache turns it on (cache.go)
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
	d := &DB{now: time.Now}
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
		d.db, err = sqlx.Open("sqlite", sqliteDSN(d.path))
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		d.dialect = Postgres
		d.db, err = sqlx.Open("postgres", rawURL)
	default:
		return nil, fmt.Errorf("open database: unsupported URL %q: use sqlite:PATH or postgres://…", redact(rawURL))
	}
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", d.dialect, err)
	}
	if d.dialect == SQLite {
		// One writer at a time is SQLite's nature; a small pool keeps readers
		// concurrent without piling up connections waiting on the write lock.
		d.db.SetMaxOpenConns(8)
	}
	if err := d.db.PingContext(ctx); err != nil {
		d.db.Close()
		return nil, fmt.Errorf("connect to %s database %s: %w", d.dialect, redact(rawURL), err)
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

// sqliteDSN turns a file path into a modernc.org/sqlite DSN: WAL for
// concurrent readers, a busy timeout instead of immediate SQLITE_BUSY,
// foreign keys on, immediate write transactions (a read-then-write
// transaction cannot deadlock), and times written as sortable UTC text.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	q.Set("_time_format", "sqlite")
	q.Set("_timezone", "UTC")
	return "file:" + path + "?" + q.Encode()
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

// Close closes the connection pool.
func (d *DB) Close() error {
	d.stopCache()
	return d.db.Close()
}

// Stats is the connection pool's statistics, for metrics.
func (d *DB) Stats() sql.DBStats { return d.db.Stats() }

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }

// ServerVersion reports the database server's version string.
func (d *DB) ServerVersion(ctx context.Context) (string, error) {
	q := "SELECT version()"
	if d.dialect == SQLite {
		q = "SELECT 'SQLite ' || sqlite_version()"
	}
	var v string
	if err := d.db.GetContext(ctx, &v, q); err != nil {
		return "", fmt.Errorf("read server version: %w", err)
	}
	return v, nil
}

// Now is the store's clock, truncated to what PostgreSQL keeps.
func (d *DB) Now() time.Time { return d.now().UTC().Truncate(time.Microsecond) }

// queryer is what *sqlx.DB and *sqlx.Tx have in common.
type queryer interface {
	sqlx.ExtContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

// tx runs fn in one transaction and commits if fn returns nil. On SQLite
// the transaction takes the write lock at BEGIN (see sqliteDSN).
func (d *DB) tx(ctx context.Context, fn func(q queryer) error) error {
	t, err := d.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(t); err != nil {
		t.Rollback()
		return err
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// q rebinds a query written with ? placeholders for the dialect.
func (d *DB) q(query string) string { return d.db.Rebind(query) }

func (d *DB) get(ctx context.Context, q queryer, dest any, query string, args ...any) error {
	err := q.GetContext(ctx, dest, d.q(query), args...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return mapErr(err)
}

func (d *DB) exec(ctx context.Context, q queryer, query string, args ...any) (int64, error) {
	res, err := q.ExecContext(ctx, d.q(query), args...)
	if err != nil {
		return 0, mapErr(err)
	}
	return res.RowsAffected()
}

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
