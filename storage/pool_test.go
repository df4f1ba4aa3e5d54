package storage_test

import (
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestSQLiteWritersQueueInGo: with SQLite's busy timeout at zero, a write
// that meets another process's write lock fails at once (the control: a
// contended lock would show); yet 64 concurrent writers of one process,
// each a transaction and plain writes, all succeed, because they queue for
// the one writer connection in Go instead of contending in SQLite.
func TestSQLiteWritersQueueInGo(t *testing.T) {
	url := storagetest.SQLite(t)
	db := storagetest.Open(t, url, storage.WithBusyTimeout(0))
	if s := db.Stats(); s.MaxOpenConnections != 1 {
		t.Fatalf("SQLite writer pool: %d connections, want 1", s.MaxOpenConnections)
	}

	other, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(url, "sqlite:")+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	if err := db.InsertMeta(ctx, "contended", []byte("x")); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("a write against another process's lock, busy timeout 0: %v, want database is locked", err)
	}
	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	lock.Close()
	if err := db.InsertMeta(ctx, "contended", []byte("x")); err != nil {
		t.Fatalf("the same write once the lock is gone: %v", err)
	}

	mustClient(t, db, "app")
	const writers = 64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() { errs <- writeOnce(db, i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// writeOnce is one writer: a user, a refresh token, its rotation with an
// access token (a transaction), and a read back.
func writeOnce(db *storage.DB, i int) error {
	u := &storage.User{Username: fmt.Sprintf("user%d", i), Email: fmt.Sprintf("user%d@example.com", i), PasswordHash: "h"}
	if err := db.CreateUser(ctx, u); err != nil {
		return err
	}
	now := db.Now()
	link := func(id string) *storage.RefreshToken {
		return &storage.RefreshToken{ID: id, TokenHash: []byte("hash-" + id), FamilyID: "fam-" + u.ID, ClientID: "app",
			UserID: u.ID, AuthTime: now, ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(24 * time.Hour)}
	}
	if err := db.CreateRefreshToken(ctx, link(u.ID+"-1")); err != nil {
		return err
	}
	at := &storage.AccessToken{ID: u.ID + "-at", ClientID: "app", UserID: u.ID, ExpiresAt: now.Add(time.Hour),
		FamilyID: sql.NullString{String: "fam-" + u.ID, Valid: true}}
	if ok, err := db.RotateRefreshTokenWithAccess(ctx, u.ID+"-1", 0, link(u.ID+"-2"), at); err != nil || !ok {
		return fmt.Errorf("writer %d: rotate: %v %v", i, ok, err)
	}
	if _, err := db.GetAccessToken(ctx, at.ID); err != nil {
		return fmt.Errorf("writer %d: read back: %w", i, err)
	}
	return nil
}

// TestSQLiteReadPoolIsQueryOnly: a write sent to the read pool fails; the
// same write through the store succeeds and the read pool then reads it.
func TestSQLiteReadPoolIsQueryOnly(t *testing.T) {
	db := storagetest.Open(t, storagetest.SQLite(t))
	const insert = `INSERT INTO stile_meta (name, value) VALUES (?, ?)`
	if err := db.ExecOnReadPool(ctx, insert, "probe", []byte("x")); err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("a write on the read pool: %v, want a readonly refusal", err)
	}
	if err := db.InsertMeta(ctx, "probe", []byte("x")); err != nil {
		t.Fatalf("the same write through the writer: %v", err)
	}
	if v, err := db.GetMeta(ctx, "probe"); err != nil || string(v) != "x" {
		t.Fatalf("read back on the read pool: %q %v", v, err)
	}
}

// TestPoolSizes: WithPool sizes PostgreSQL's pool and SQLite's read pool;
// SQLite's writer keeps one connection. Without it, the defaults.
func TestPoolSizes(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storagetest.Open(t, d.URL(t), storage.WithPool(storage.PoolConfig{MaxOpen: 7, MaxIdle: 3, MaxLifetime: time.Hour}))
			if got := db.ReadStats().MaxOpenConnections; got != 7 {
				t.Errorf("read pool: %d connections, want the configured 7", got)
			}
			wantWriter := 7
			if d.Name == string(storage.SQLite) {
				wantWriter = 1
			}
			if got := db.Stats().MaxOpenConnections; got != wantWriter {
				t.Errorf("write pool: %d connections, want %d", got, wantWriter)
			}
			def := storagetest.Open(t, d.URL(t))
			if got := def.ReadStats().MaxOpenConnections; got < 4 {
				t.Errorf("default read pool: %d connections, want at least 4", got)
			}
		})
	}
}

// TestStatementCache: a query is prepared once per pool and reused, in a
// transaction too: repeating a read or a rotation adds no statement.
func TestStatementCache(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storagetest.Open(t, d.URL(t))
			mustClient(t, db, "app")
			u := mustUser(t, db, "alice")
			now := db.Now()
			link := func(id string) *storage.RefreshToken {
				return &storage.RefreshToken{ID: id, TokenHash: []byte("hash-" + id), FamilyID: "fam", ClientID: "app",
					UserID: u.ID, AuthTime: now, ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(24 * time.Hour)}
			}
			if err := db.CreateRefreshToken(ctx, link("r0")); err != nil {
				t.Fatal(err)
			}
			var counts [][2]int
			for i := range 3 {
				if _, err := db.GetClient(ctx, "app"); err != nil {
					t.Fatal(err)
				}
				ok, err := db.RotateRefreshToken(ctx, fmt.Sprintf("r%d", i), 0, link(fmt.Sprintf("r%d", i+1)))
				if err != nil || !ok {
					t.Fatalf("rotation %d: %v %v", i, ok, err)
				}
				w, r := db.CachedStatements()
				counts = append(counts, [2]int{w, r})
			}
			if counts[0][0] == 0 || counts[0][1] == 0 {
				t.Fatalf("nothing prepared after a read and a rotation: %v", counts)
			}
			if counts[1] != counts[0] || counts[2] != counts[0] {
				t.Fatalf("cached statements grew as the same queries repeated: %v", counts)
			}
			if fam, err := db.RefreshFamily(ctx, "fam"); err != nil || len(fam) != 4 {
				t.Fatalf("family after three rotations through cached statements: %d links, %v", len(fam), err)
			}
		})
	}
}
