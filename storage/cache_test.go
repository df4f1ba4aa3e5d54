package storage_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/stile-id/stile/internal/clocktest"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// cachedStore opens a store over url with the cache on, counting the
// client rows it reads from the database.
func cachedStore(t *testing.T, url string, o storage.CacheOptions) (*storage.DB, *atomic.Int64) {
	t.Helper()
	db := storagetest.Open(t, url)
	o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := db.StartCache(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int64
	db.SetReadHook(func(table string) {
		if table == "clients" {
			reads.Add(1)
		}
	})
	return db, &reads
}

func cacheClient(id, redirect string) *storage.Client {
	return &storage.Client{ID: id, Name: id, Type: storage.ClientSPA, AuthMethod: storage.AuthNone, RequirePKCE: true,
		RedirectURIs: storage.Strings{redirect}}
}

// redirectOf reads the client through db and returns its first redirect URI.
func redirectOf(t *testing.T, db *storage.DB, id string) string {
	t.Helper()
	c, err := db.GetClient(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.RedirectURIs[0]
}

// rawConn is a connection to the database that is not a stile store: a
// writer in another process, which nothing in this one hears about.
func rawConn(t *testing.T, url string) *sqlx.DB {
	t.Helper()
	driver, dsn := "postgres", url
	if p, ok := strings.CutPrefix(url, "sqlite:"); ok {
		driver, dsn = "sqlite", "file:"+p+"?_pragma=busy_timeout(5000)"
	}
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func setRedirect(t *testing.T, db *sqlx.DB, id, redirect string) {
	t.Helper()
	if _, err := db.Exec(db.Rebind(`UPDATE clients SET redirect_uris = ? WHERE id = ?`), `["`+redirect+`"]`, id); err != nil {
		t.Fatal(err)
	}
}

// TestClientCache: a cached client costs no read; a change through this
// store, or another store of the process, is seen at once; a change by a
// writer nothing tells is seen once the cache checks cache_version, and not
// before; a client read while the cache is off is read every time.
func TestClientCache(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			url := d.URL(t)
			clock := clocktest.New(time.Now())
			db, reads := cachedStore(t, url, storage.CacheOptions{Clock: clock.Now, Revalidate: time.Second})
			if err := db.CreateClient(ctx, cacheClient("spa", "https://a.example/cb")); err != nil {
				t.Fatal(err)
			}
			redirectOf(t, db, "spa")
			redirectOf(t, db, "spa")
			if n := reads.Load(); n != 1 {
				t.Fatalf("two reads of a client cost %d database reads, want 1", n)
			}
			// A caller changing what it got does not change the cache.
			c, _ := db.GetClient(ctx, "spa")
			c.RedirectURIs[0] = "https://mutated.example/cb"
			if got := redirectOf(t, db, "spa"); got != "https://a.example/cb" {
				t.Fatalf("the cache holds the caller's change %q", got)
			}

			if _, err := db.UpdateClient(ctx, "spa", func(c *storage.Client) error {
				c.RedirectURIs = storage.Strings{"https://b.example/cb"}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if got := redirectOf(t, db, "spa"); got != "https://b.example/cb" {
				t.Fatalf("after an update through the store: %q", got)
			}

			// Another store of the process, caching or not (the CLI run
			// in-process): at once.
			other := storagetest.Open(t, url)
			if _, err := other.UpdateClient(ctx, "spa", func(c *storage.Client) error {
				c.RedirectURIs = storage.Strings{"https://c.example/cb"}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if got := redirectOf(t, db, "spa"); got != "https://c.example/cb" {
				t.Fatalf("after an update through another store of the process: %q", got)
			}

			// A writer nothing tells (another process): the next check of
			// cache_version. The clock is the cache's own, so nothing but
			// that check can see it; on PostgreSQL the listener is off.
			setRedirect(t, rawConn(t, url), "spa", "https://d.example/cb")
			if got := redirectOf(t, db, "spa"); got != "https://c.example/cb" {
				t.Fatalf("before the cache checked the version it answered %q: something else told it", got)
			}
			clock.Advance(time.Second)
			if got := redirectOf(t, db, "spa"); got != "https://d.example/cb" {
				t.Fatalf("after the revalidation bound: %q, want the other process's change", got)
			}

			// Off (a CLI command's store): every read is a read.
			var offReads atomic.Int64
			other.SetReadHook(func(string) { offReads.Add(1) })
			redirectOf(t, other, "spa")
			redirectOf(t, other, "spa")
			if n := offReads.Load(); n != 2 {
				t.Fatalf("a store without the cache read %d times for two reads", n)
			}
		})
	}
}

// TestClientCacheDeleted: a deleted client is gone from the cache, and an
// unknown one is never cached (the next read reads).
func TestClientCacheDeleted(t *testing.T) {
	ctx := context.Background()
	db, reads := cachedStore(t, storagetest.SQLite(t), storage.CacheOptions{})
	if err := db.CreateClient(ctx, cacheClient("spa", "https://a.example/cb")); err != nil {
		t.Fatal(err)
	}
	redirectOf(t, db, "spa")
	if err := db.DeleteClient(ctx, "spa"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := db.GetClient(ctx, "spa"); err == nil {
			t.Fatal("a deleted client is still found")
		}
	}
	if n := reads.Load(); n != 3 {
		t.Fatalf("%d reads: an unknown client must be read every time (want 3)", n)
	}
}

// TestCacheNotification: on PostgreSQL another process's change reaches a
// listening cache within a second through the notification, with
// revalidation set far beyond the test so nothing else can deliver it.
func TestCacheNotification(t *testing.T) {
	ctx := context.Background()
	url := storagetest.Postgres(t)
	db, _ := cachedStore(t, url, storage.CacheOptions{ListenURL: url, Revalidate: time.Hour, Isolated: true})
	if err := db.CreateClient(ctx, cacheClient("spa", "https://a.example/cb")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "the insert's notification", func() bool { return db.Listener().Notifications > 0 })
	if got := redirectOf(t, db, "spa"); got != "https://a.example/cb" {
		t.Fatalf("first read: %q", got)
	}
	setRedirect(t, rawConn(t, url), "spa", "https://b.example/cb")
	waitFor(t, time.Second, "the notified change", func() bool { return redirectOf(t, db, "spa") == "https://b.example/cb" })
}

// TestCacheListenerReconnect: a change that sends no notification (the
// triggers are off, as if it came while the listener was away) is seen
// after the listener reconnects, because a reconnect drops the cache.
func TestCacheListenerReconnect(t *testing.T) {
	ctx := context.Background()
	url := storagetest.Postgres(t)
	db, _ := cachedStore(t, url, storage.CacheOptions{ListenURL: url, Revalidate: time.Hour, Isolated: true})
	if err := db.CreateClient(ctx, cacheClient("spa", "https://a.example/cb")); err != nil {
		t.Fatal(err)
	}
	// The insert's own notification drops the cache when it arrives: let it
	// arrive before the read that fills the cache.
	waitFor(t, time.Second, "the insert's notification", func() bool { return db.Listener().Notifications > 0 })
	redirectOf(t, db, "spa")
	raw := rawConn(t, url)
	conn, err := raw.Connx(ctx) // ALTER TABLE … DISABLE TRIGGER holds for every session: one connection, re-enabled after
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{`ALTER TABLE clients DISABLE TRIGGER stile_cache_clients`,
		`UPDATE clients SET redirect_uris = '["https://b.example/cb"]' WHERE id = 'spa'`,
		`ALTER TABLE clients ENABLE TRIGGER stile_cache_clients`} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if got := redirectOf(t, db, "spa"); got != "https://a.example/cb" {
		t.Fatalf("a change without notification was seen before any reconnect: %q", got)
	}
	before := db.Listener()
	if !before.Connected {
		t.Fatal("the listener is not connected")
	}
	var n int
	if err := conn.GetContext(ctx, &n, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, storage.ListenerName); err != nil || n != 1 {
		t.Fatalf("terminate the listener's connection: %d %v", n, err)
	}
	waitFor(t, 5*time.Second, "the listener's reconnect", func() bool {
		after := db.Listener()
		return after.Reconnects > before.Reconnects && after.Connected
	})
	if got := redirectOf(t, db, "spa"); got != "https://b.example/cb" {
		t.Fatalf("after the reconnect: %q, want the change made while no notification came", got)
	}
}

// waitFor polls cond until it holds or the bound passes: a correctness
// bound, not a speed measurement.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
