package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
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
			stop := recordStatements(f.s.db)
			status, body := f.refresh(t, rt, "app", f.secret)
			stmts := stop()
			if status != http.StatusOK {
				t.Fatalf("refresh: %d %v", status, body)
			}
			f.verifyID(t, body) // the positive control: the grant worked and its tokens verify
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

// TestCodeExchangeStatements checks that a code exchange with
// offline_access stores its refresh token and its access token in one
// transaction (on both databases): one commit, and never one without the
// other.
func TestCodeExchangeStatements(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL(t))
			b := newBrowser(t, f.s)
			az := f.rp.authorize("scope", "openid profile offline_access")
			code := f.signIn(t, b, az, f.alice)
			stop := recordStatements(f.s.db)
			resp, body := rawToken(t, f.s, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {appRedirect}, "code_verifier": {az.verifier}}, "app", f.secret)
			stmts := stop()
			if resp.StatusCode != http.StatusOK || body["refresh_token"] == nil { // the positive control
				t.Fatalf("code exchange with offline_access: %d %v", resp.StatusCode, body)
			}
			inTx := false
			for i, q := range stmts {
				t.Logf("%2d %.110s", i+1, q)
				switch {
				case q == "BEGIN":
					inTx = true
				case q == "COMMIT" || q == "ROLLBACK":
					inTx = false
				case strings.HasPrefix(q, "INSERT INTO refresh_tokens ") || strings.HasPrefix(q, "INSERT INTO access_tokens "):
					if !inTx {
						t.Errorf("statement %d stores a token outside a transaction: %.60s", i+1, q)
					}
				}
			}
		})
	}
}

// recordStatements records every statement db runs, whitespace folded,
// until the returned stop is called; stop returns them in order.
func recordStatements(db *storage.DB) (stop func() []string) {
	var mu sync.Mutex
	var stmts []string
	db.OnStatement(func(q string) {
		mu.Lock()
		defer mu.Unlock()
		stmts = append(stmts, strings.Join(strings.Fields(q), " "))
	})
	return func() []string {
		db.OnStatement(nil)
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(stmts)
	}
}
