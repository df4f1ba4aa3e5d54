package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/stile-id/stile/storage"
)

// dbPoolOptions are serve's flags for the database pool: PostgreSQL's one
// pool, or SQLite's read pool (SQLite's writer always has one connection).
type dbPoolOptions struct {
	maxOpen, maxIdle int
	maxLifetime      time.Duration
}

func (o *dbPoolOptions) register(f *pflag.FlagSet) {
	f.IntVar(&o.maxOpen, "db-max-open-conns", 0, "database connections open at most (env STILE_DB_MAX_OPEN_CONNS); "+
		"0: 4 per core on PostgreSQL, 2 per core for SQLite's read pool (SQLite's writer has one), at least 4")
	f.SetAnnotation("db-max-open-conns", "env", []string{"STILE_DB_MAX_OPEN_CONNS"})
	f.IntVar(&o.maxIdle, "db-max-idle-conns", 0, "database connections kept open while idle, each with its prepared statements "+
		"(env STILE_DB_MAX_IDLE_CONNS); 0: as many as --db-max-open-conns")
	f.SetAnnotation("db-max-idle-conns", "env", []string{"STILE_DB_MAX_IDLE_CONNS"})
	o.maxLifetime = storage.DefaultPool().MaxLifetime
	durationFlag(f, &o.maxLifetime, "db-conn-max-lifetime", "STILE_DB_CONN_MAX_LIFETIME",
		"a database connection is replaced after this long (a pool rebalances after a failover); 0: never")
}

// validate refuses sizes the pool cannot work with. PostgreSQL needs two
// connections at start: the migration lock holds one while the
// migrations run on another.
func (o *dbPoolOptions) validate() error {
	var errs []error
	if o.maxOpen < 0 || o.maxOpen == 1 {
		errs = append(errs, fmt.Errorf("--db-max-open-conns must be 0 (the default) or at least 2, not %d", o.maxOpen))
	}
	if o.maxIdle < 0 || (o.maxOpen > 0 && o.maxIdle > o.maxOpen) {
		errs = append(errs, fmt.Errorf("--db-max-idle-conns must be between 0 and --db-max-open-conns, not %d", o.maxIdle))
	}
	if o.maxLifetime < 0 {
		errs = append(errs, fmt.Errorf("--db-conn-max-lifetime must not be negative, not %s", o.maxLifetime))
	}
	return errors.Join(errs...)
}

// option is the storage option the flags describe.
func (o *dbPoolOptions) option() storage.Option {
	p := storage.PoolConfig{MaxOpen: o.maxOpen, MaxIdle: o.maxIdle, MaxLifetime: o.maxLifetime}
	if o.maxLifetime == 0 {
		p.MaxLifetime = -1 // never; zero would mean the default
	}
	return storage.WithPool(p)
}
