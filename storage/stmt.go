package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jmoiron/sqlx"
)

// queryer is what *sqlx.DB and *txq have in common.
type queryer interface {
	sqlx.ExtContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

// txq is a transaction on the write pool. It remembers the queries it ran
// unprepared, to prepare them on the pool once it has given its
// connection back.
type txq struct {
	*sqlx.Tx
	missed []string
}

// maxCachedStmts bounds each pool's statement cache. stile's queries are
// constants (a few dozen); a query built at run time past the bound runs
// unprepared rather than growing the cache.
const maxCachedStmts = 256

// stmtCache holds one pool's prepared statements, keyed by the rebound
// query. modernc.org/sqlite compiles a statement on every call otherwise
// (a quarter of a refresh grant's CPU); database/sql prepares a cached
// statement lazily on each connection it runs on and keeps it there.
type stmtCache struct {
	db *sqlx.DB
	m  sync.Map // query → *sqlx.Stmt
	n  atomic.Int64
}

func newStmtCache(db *sqlx.DB) *stmtCache { return &stmtCache{db: db} }

// prepared returns the cached statement for query, or nil.
func (c *stmtCache) prepared(query string) *sqlx.Stmt {
	if s, ok := c.m.Load(query); ok {
		return s.(*sqlx.Stmt)
	}
	return nil
}

// prepare returns query's statement, preparing it on first use, or nil
// when the cache is full. It must never be called while the caller holds
// one of the pool's connections (a transaction): preparing takes a
// connection, and the writer has only one.
func (c *stmtCache) prepare(ctx context.Context, query string) (*sqlx.Stmt, error) {
	if s := c.prepared(query); s != nil {
		return s, nil
	}
	if c.n.Load() >= maxCachedStmts {
		return nil, nil
	}
	s, err := c.db.PreparexContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := c.m.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(*sqlx.Stmt), nil
	}
	c.n.Add(1)
	return s, nil
}

func (c *stmtCache) close() {
	c.m.Range(func(k, v any) bool {
		v.(*sqlx.Stmt).Close()
		c.m.Delete(k)
		return true
	})
}

// stmt returns the prepared statement to run query (already rebound) on
// q, or nil to run it unprepared. In a transaction a statement prepared on
// the writer is bound to the transaction, which reuses the driver's
// statement already prepared on the same connection; a query not yet
// cached runs unprepared and is prepared after the transaction.
func (d *DB) stmt(ctx context.Context, q queryer, query string) (*sqlx.Stmt, error) {
	d.note(query)
	switch h := q.(type) {
	case *txq:
		if s := d.ws.prepared(query); s != nil {
			return h.StmtxContext(ctx, s), nil
		}
		h.missed = append(h.missed, query)
		return nil, nil
	case *sqlx.DB:
		c := d.ws
		if h == d.r {
			c = d.rs
		}
		return c.prepare(ctx, query)
	}
	return nil, nil
}

// OnStatement calls fn with every statement the store runs (BEGIN and
// COMMIT included), for tests that count a flow's statements; nil stops.
func (d *DB) OnStatement(fn func(query string)) {
	if fn == nil {
		d.hook.Store(nil)
		return
	}
	d.hook.Store(&fn)
}

func (d *DB) note(query string) {
	if h := d.hook.Load(); h != nil {
		(*h)(query)
	}
}

// tx runs fn in one transaction on the writer and commits if fn returns
// nil. On SQLite the transaction takes the write lock at BEGIN (see
// sqliteDSN). fn must run everything through the queryer it is given:
// the writer's one connection is the transaction's.
func (d *DB) tx(ctx context.Context, fn func(q queryer) error) error {
	unlock, err := d.hold(ctx, d.w)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer unlock()
	d.note("BEGIN")
	t, err := d.w.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	q := &txq{Tx: t}
	defer d.prepareMissed(ctx, q) // before unlock: it uses the writer's connection
	if err := fn(q); err != nil {
		d.note("ROLLBACK")
		t.Rollback()
		return err
	}
	d.note("COMMIT")
	if err := t.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// prepareMissed prepares, once the transaction has released its
// connection, the queries it ran unprepared. A failure only means the
// next transaction runs them unprepared again.
func (d *DB) prepareMissed(ctx context.Context, q *txq) {
	for _, query := range q.missed {
		d.ws.prepare(ctx, query) //nolint:errcheck // best effort, see above
	}
}

// hold takes a slot of q's pool, if q is a pool, and returns its release.
// database/sql hands a freed connection to a random waiter, which under 32
// concurrent requests leaves some waiting for many turns: a p99 of
// seconds beside a p50 of tens of milliseconds. A channel's waiters are
// served in order, so with one slot per connection nobody waits inside
// database/sql and connections pass first come, first served. On SQLite
// the writer's one slot is what queues writers in Go.
func (d *DB) hold(ctx context.Context, q queryer) (func(), error) {
	var gate chan struct{}
	switch q {
	case queryer(d.w):
		gate = d.wgate
	case queryer(d.r):
		gate = d.rgate
	}
	if gate == nil {
		return func() {}, nil
	}
	select {
	case gate <- struct{}{}:
		return func() { <-gate }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// q rebinds a query written with ? placeholders for the dialect.
func (d *DB) q(query string) string { return d.w.Rebind(query) }

// run runs query (written with ? placeholders) on q in a slot of its
// pool: through prepared when the statement cache has it, else through
// direct with the rebound query.
func (d *DB) run(ctx context.Context, q queryer, query string, prepared func(*sqlx.Stmt) error, direct func(string) error) error {
	unlock, err := d.hold(ctx, q)
	if err != nil {
		return err
	}
	defer unlock()
	query = d.q(query)
	s, err := d.stmt(ctx, q, query)
	switch {
	case err != nil:
	case s != nil:
		err = prepared(s)
	default:
		err = direct(query)
	}
	return mapErr(err)
}

func (d *DB) get(ctx context.Context, q queryer, dest any, query string, args ...any) error {
	err := d.run(ctx, q, query,
		func(s *sqlx.Stmt) error { return s.GetContext(ctx, dest, args...) },
		func(query string) error { return q.GetContext(ctx, dest, query, args...) })
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

func (d *DB) sel(ctx context.Context, q queryer, dest any, query string, args ...any) error {
	return d.run(ctx, q, query,
		func(s *sqlx.Stmt) error { return s.SelectContext(ctx, dest, args...) },
		func(query string) error { return q.SelectContext(ctx, dest, query, args...) })
}

func (d *DB) exec(ctx context.Context, q queryer, query string, args ...any) (int64, error) {
	var res sql.Result
	err := d.run(ctx, q, query,
		func(s *sqlx.Stmt) (err error) { res, err = s.ExecContext(ctx, args...); return err },
		func(query string) (err error) { res, err = q.ExecContext(ctx, query, args...); return err })
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
