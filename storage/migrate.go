package storage

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrations embed.FS

// migrationTable records which migrations ran.
const migrationTable = "stile_schema_migrations"

// Migrate brings the schema up to date. It holds a lock while it works —
// a PostgreSQL advisory lock, or a file lock beside the SQLite file — so two
// instances starting together apply each migration once. Every applied
// migration is logged.
func (d *DB) Migrate(ctx context.Context, log *slog.Logger) error {
	dir := "migrations/" + string(d.dialect)
	fsys, err := fs.Sub(migrations, dir)
	if err != nil {
		return fmt.Errorf("migrations %s: %w", dir, err)
	}
	opts := []goose.ProviderOption{
		goose.WithTableName(migrationTable),
		goose.WithDisableGlobalRegistry(true),
	}
	dialect := goose.DialectPostgres
	switch d.dialect {
	case Postgres:
		// Poll every second for up to five minutes while another instance migrates.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	case SQLite:
		dialect = goose.DialectSQLite3
		opts = append(opts, goose.WithLocker(&fileLocker{path: d.path + ".migrate.lock"}))
	}
	p, err := goose.NewProvider(dialect, d.w.DB, fsys, opts...)
	if err != nil {
		return fmt.Errorf("prepare migrations: %w", err)
	}
	results, err := p.Up(ctx)
	for _, r := range results {
		log.Info("applied migration", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
	}
	if err != nil {
		return fmt.Errorf("migrate %s schema: %w", d.dialect, err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	log.Debug("schema up to date", "version", v)
	return nil
}
