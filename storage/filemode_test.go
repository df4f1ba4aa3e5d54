package storage_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stile-id/stile/storage"
)

// TestSQLiteFileMode: a database file, WAL or shared-memory file that group
// or others can open is refused at open, with the chmod that fixes it, as
// the master key file is; a new file is created 0600, and an existing
// private one opens.
func TestSQLiteFileMode(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "stile.db")

	// Positive control: a new file is created private and opens, twice.
	for range 2 {
		db, err := storage.Open(ctx, "sqlite:"+path)
		if err != nil {
			t.Fatalf("open a private database: %v", err)
		}
		if err := db.Migrate(ctx, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("created with mode %04o, want 0600", fi.Mode().Perm())
	}

	for _, c := range []struct {
		file string
		mode os.FileMode
	}{
		{path, 0o644}, {path, 0o640}, {path, 0o606}, {path + "-wal", 0o644}, {path + "-shm", 0o604},
	} {
		if err := os.WriteFile(c.file, nil, 0o600); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
		if err := os.Chmod(c.file, c.mode); err != nil {
			t.Fatal(err)
		}
		_, err := storage.Open(ctx, "sqlite:"+path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+c.file) {
			t.Errorf("%s with mode %04o: err %v, want a refusal that says chmod 600", filepath.Base(c.file), c.mode, err)
		}
		if err := os.Chmod(c.file, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := storage.Open(ctx, "sqlite:"+path)
		if err != nil {
			t.Fatalf("after chmod 600 %s: %v", filepath.Base(c.file), err)
		}
		db.Close()
	}
}
