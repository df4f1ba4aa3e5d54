package storagetest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stile-id/stile/storage"
)

// SQLite returns the URL of a new SQLite file in the test's temporary
// directory.
func SQLite(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "stile.db")
}

// Dialect is a database kind and a way to get a fresh, empty one.
type Dialect struct {
	Name string
	URL  func(testing.TB) string
}

// Dialects lists both databases: every test that takes them runs on each.
func Dialects() []Dialect {
	return []Dialect{{"sqlite", SQLite}, {"postgres", Postgres}}
}

// Open opens and migrates the database at url, and closes it when the test
// ends.
func Open(t testing.TB, url string, opts ...storage.Option) *storage.DB {
	t.Helper()
	ctx := context.Background()
	db, err := storage.Open(ctx, url, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}
