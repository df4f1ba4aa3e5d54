package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stile-id/stile/storage/storagetest"
)

// TestRefreshStatements records the SQL of one refresh grant, end to end
// over HTTP, and checks that its writes commit once (one transaction on
// SQLite, one statement on PostgreSQL). The statements are logged, for
// the count in the notes.
func TestRefreshStatements(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL(t))
			rt := f.offline(t)["refresh_token"].(string)
			f.s.clock.Advance(time.Minute)
			var mu sync.Mutex
			var stmts []string
			f.s.db.OnStatement(func(q string) {
				mu.Lock()
				defer mu.Unlock()
				stmts = append(stmts, strings.Join(strings.Fields(q), " "))
			})
			status, body := f.refresh(t, rt, "app", f.secret)
			f.s.db.OnStatement(nil)
			if status != http.StatusOK {
				t.Fatalf("refresh: %d %v", status, body)
			}
			f.verifyID(t, body) // the positive control: the grant worked and its tokens verify
			mu.Lock()
			defer mu.Unlock()
			checkOneWriteTransaction(t, stmts)
		})
	}
}

// checkOneWriteTransaction fails unless the grant's writes among stmts
// commit once: one BEGIN … COMMIT (SQLite), or one statement (PostgreSQL,
// where the rotation is a single WITH … INSERT … statement).
func checkOneWriteTransaction(t *testing.T, stmts []string) {
	t.Helper()
	commits, inTx, writes := 0, false, []string{}
	for i, q := range stmts {
		t.Logf("%2d %.110s", i+1, q)
		switch strings.ToUpper(strings.Fields(q)[0]) {
		case "BEGIN":
			commits, inTx = commits+1, true
		case "COMMIT", "ROLLBACK":
			inTx = false
		case "INSERT", "UPDATE", "DELETE", "WITH":
			// The per-address limit counts the request before the grant
			// runs, in a statement of its own.
			if !inTx && !strings.HasPrefix(q, "INSERT INTO rate_limits ") {
				commits++
				writes = append(writes, q)
			}
		}
	}
	t.Logf("%d statements, %d commits of the grant's writes", len(stmts), commits)
	if commits != 1 {
		t.Errorf("a refresh committed its writes %d times, want once; writes outside a transaction: %q", commits, writes)
	}
}
