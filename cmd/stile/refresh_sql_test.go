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
// over HTTP, and checks its writes: all of them in one transaction (one
// commit, one fsync on SQLite), none outside it. The statements are
// logged, for the count in the notes.
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

// checkOneWriteTransaction fails unless every write of the grant among
// stmts sits in the one BEGIN … COMMIT.
func checkOneWriteTransaction(t *testing.T, stmts []string) {
	t.Helper()
	begins, inTx, stray := 0, false, []string{}
	for i, q := range stmts {
		t.Logf("%2d %.110s", i+1, q)
		verb := strings.ToUpper(strings.Fields(q)[0])
		switch verb {
		case "BEGIN":
			begins, inTx = begins+1, true
		case "COMMIT", "ROLLBACK":
			inTx = false
		case "INSERT", "UPDATE", "DELETE":
			// The per-address limit counts the request before the grant
			// runs, in a statement of its own.
			if !inTx && !strings.HasPrefix(q, "INSERT INTO rate_limits ") {
				stray = append(stray, q)
			}
		}
	}
	t.Logf("%d statements, %d transactions", len(stmts), begins)
	if begins != 1 || len(stray) > 0 {
		t.Errorf("a refresh ran %d transactions and %d writes outside one: %q", begins, len(stray), stray)
	}
}
