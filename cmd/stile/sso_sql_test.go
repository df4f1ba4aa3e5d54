package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/storage/storagetest"
)

// TestSilentSSOStatements records the SQL of silent sign-ins (prompt=none
// with a live session, through the callback, then the code exchange) and
// logs it, for the statement counts in the notes. A silent sign-in checks
// no password, and writes the session only when its last recorded use is
// older than a thirtieth of the idle lifetime.
func TestSilentSSOStatements(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL(t))
			b := newBrowser(t, f.s)
			f.signIn(t, b, f.rp.authorize(), f.alice)
			silentTouches(t, f, b, 0)          // just signed in: nothing new to record
			f.s.clock.Advance(2 * time.Minute) // past a thirtieth of the 30-minute idle lifetime
			silentTouches(t, f, b, 1)
		})
	}
}

// silentTouches signs in silently in b and checks that the SQL it ran
// wrote the session want times.
func silentTouches(t *testing.T, f *fixture, b *browser, want int) {
	t.Helper()
	hashes := f.s.hasher.verifies.Load()
	stop := recordStatements(f.s.db)
	az := f.rp.authorize("prompt", "none")
	f.tokens(t, f.silent(t, b, az), az) // the positive control: the tokens verify
	stmts := stop()
	if n := f.s.hasher.verifies.Load() - hashes; n != 0 {
		t.Errorf("a silent sign-in checked %d passwords, want none", n)
	}
	touches := 0
	for i, q := range stmts {
		t.Logf("%2d %.120s", i+1, q)
		if strings.HasPrefix(q, "UPDATE sessions ") {
			touches++
		}
	}
	if touches != want {
		t.Errorf("the session was written %d times, want %d", touches, want)
	}
}
