package storage

import (
	"fmt"
	"net/url"
	"runtime"
	"time"

	"github.com/jmoiron/sqlx"
)

// PoolConfig sizes a connection pool. Zero fields take the defaults of
// DefaultPool.
type PoolConfig struct {
	MaxOpen     int           // connections open at most
	MaxIdle     int           // connections kept open while idle
	MaxLifetime time.Duration // a connection is closed after this long; negative: never
}

// DefaultPool is PostgreSQL's pool unless told otherwise: 4×GOMAXPROCS
// connections (at least 4), because a token request holds a connection
// only for a few short statements between CPU work (signing, hashing) that
// needs this process's cores: enough connections that the cores never
// idle waiting on round trips, and no more, since more only queue inside
// the database server. Every connection stays open while idle, because
// each one carries its own prepared statements and a closed one must
// prepare them again. Connections are recycled after 30 minutes, so a pool
// rebalances after a PostgreSQL failover or a load balancer change.
func DefaultPool() PoolConfig {
	n := max(4, 4*runtime.GOMAXPROCS(0))
	return PoolConfig{MaxOpen: n, MaxIdle: n, MaxLifetime: 30 * time.Minute}
}

// defaultReadPool is SQLite's read pool unless told otherwise:
// 2×GOMAXPROCS connections (at least 4). An SQLite read is CPU work in
// this process, not a wait on a server, so more connections than that
// only add page caches; the connections live as long as the process.
func defaultReadPool() PoolConfig {
	n := max(4, 2*runtime.GOMAXPROCS(0))
	return PoolConfig{MaxOpen: n, MaxIdle: n}
}

// WithPool sizes the PostgreSQL pool, or SQLite's read pool; zero fields
// keep the defaults (DefaultPool, or 2×GOMAXPROCS readers on SQLite).
func WithPool(p PoolConfig) Option {
	return func(d *DB) { d.pool = p }
}

// poolConfig fills what the operator left zero with def.
func (d *DB) poolConfig(def PoolConfig) PoolConfig {
	p := d.pool
	if p.MaxOpen <= 0 {
		p.MaxOpen = def.MaxOpen
	}
	if p.MaxIdle <= 0 || p.MaxIdle > p.MaxOpen {
		p.MaxIdle = p.MaxOpen
	}
	switch {
	case p.MaxLifetime == 0:
		p.MaxLifetime = def.MaxLifetime
	case p.MaxLifetime < 0:
		p.MaxLifetime = 0 // database/sql's "never"
	}
	return p
}

func applyPool(db *sqlx.DB, p PoolConfig) {
	db.SetMaxOpenConns(p.MaxOpen)
	db.SetMaxIdleConns(p.MaxIdle)
	db.SetConnMaxLifetime(p.MaxLifetime)
}

// openPostgres opens one pool for reads and writes: PostgreSQL runs
// concurrent writers itself.
func (d *DB) openPostgres(rawURL string) error {
	db, err := sqlx.Open("postgres", rawURL)
	if err != nil {
		return err
	}
	p := d.poolConfig(DefaultPool())
	p.MaxOpen = max(p.MaxOpen, 2) // the migration lock holds one connection while the migrations use another
	applyPool(db, p)
	d.w, d.r = db, db
	d.ws = newStmtCache(db)
	d.rs = d.ws
	d.wgate = make(chan struct{}, p.MaxOpen)
	d.rgate = d.wgate
	return nil
}

// openSQLite opens the writer (one connection, kept forever with its
// prepared statements) and the query_only read pool over the same file.
func (d *DB) openSQLite() error {
	w, err := sqlx.Open("sqlite", sqliteDSN(d.path, false, d.busyTimeout))
	if err != nil {
		return err
	}
	applyPool(w, PoolConfig{MaxOpen: 1, MaxIdle: 1})
	r, err := sqlx.Open("sqlite", sqliteDSN(d.path, true, d.busyTimeout))
	if err != nil {
		w.Close()
		return err
	}
	rp := d.poolConfig(defaultReadPool())
	applyPool(r, rp)
	d.w, d.r = w, r
	d.ws, d.rs = newStmtCache(w), newStmtCache(r)
	d.wgate, d.rgate = make(chan struct{}, 1), make(chan struct{}, rp.MaxOpen)
	return nil
}

// defaultBusyTimeout is how long an SQLite connection waits for another
// process's write lock.
const defaultBusyTimeout = 10 * time.Second

// pools lists the distinct pools.
func (d *DB) pools() []*sqlx.DB {
	if d.r == nil || d.r == d.w {
		return []*sqlx.DB{d.w}
	}
	return []*sqlx.DB{d.w, d.r}
}

// sqliteDSN turns a file path into a modernc.org/sqlite DSN: WAL for
// concurrent readers, foreign keys on, immediate write transactions (a
// read-then-write transaction cannot deadlock), and times written as
// sortable UTC text. The busy timeout stays for other processes on the
// same file (a CLI command while the server runs); within the process the
// single writer connection already serialises writes. A reader is
// query_only: a write sent to it by mistake fails instead of contending
// for the lock.
func sqliteDSN(path string, readOnly bool, busy time.Duration) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	q.Set("_time_format", "sqlite")
	q.Set("_timezone", "UTC")
	return "file:" + path + "?" + q.Encode()
}
