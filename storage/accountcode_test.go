package storage_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestAccountCodes covers migration 0017 (the account page's sent codes)
// on SQLite and PostgreSQL: one code per user and purpose, spent once,
// a bounded number of wrong tries, expiry, cleanup.
func TestAccountCodes(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			t.Run("UseOnce", func(t *testing.T) { testAccountCodeUseOnce(t, newStoreFixture(t, d)) })
			t.Run("Tries", func(t *testing.T) { testAccountCodeTries(t, newStoreFixture(t, d)) })
			t.Run("Concurrent", func(t *testing.T) { testAccountCodeConcurrent(t, newStoreFixture(t, d)) })
			t.Run("ExpiresAndCleanup", func(t *testing.T) { testAccountCodeExpires(t, newStoreFixture(t, d)) })
		})
	}
}

func setCode(t *testing.T, f fixture, userID, purpose, target, mac string) {
	t.Helper()
	c := &storage.AccountCode{UserID: userID, Purpose: purpose, Target: target, CodeMAC: []byte(mac), ExpiresAt: f.clock.Now().Add(5 * time.Minute)}
	if err := f.db.SetAccountCode(ctx, c); err != nil {
		t.Fatal(err)
	}
}

func useCode(t *testing.T, f fixture, userID, purpose, mac string) (*storage.AccountCode, bool) {
	t.Helper()
	c, ok, err := f.db.UseAccountCode(ctx, userID, purpose, []byte(mac), 5)
	if err != nil {
		t.Fatal(err)
	}
	return c, ok
}

func testAccountCodeUseOnce(t *testing.T, f fixture) {
	alice, bob := mustUser(t, f.db, "alice"), mustUser(t, f.db, "bob")
	setCode(t, f, alice.ID, "email", "new@example.com", "m1")
	setCode(t, f, alice.ID, "stepup", "alice@example.com", "m2")
	if _, ok := useCode(t, f, bob.ID, "email", "m1"); ok {
		t.Fatal("bob used alice's code")
	}
	if _, ok := useCode(t, f, alice.ID, "stepup", "m1"); ok {
		t.Fatal("a code worked for another purpose")
	}
	if c, ok := useCode(t, f, alice.ID, "email", "m1"); !ok || c.Target != "new@example.com" {
		t.Fatalf("the right code: %v %+v", ok, c)
	}
	if _, ok := useCode(t, f, alice.ID, "email", "m1"); ok {
		t.Fatal("a code worked twice")
	}
	if _, ok := useCode(t, f, alice.ID, "stepup", "m2"); !ok {
		t.Fatal("the other purpose's code was lost")
	}
	// A new code replaces the old one.
	setCode(t, f, alice.ID, "email", "a@example.com", "old")
	setCode(t, f, alice.ID, "email", "b@example.com", "new")
	if _, ok := useCode(t, f, alice.ID, "email", "old"); ok {
		t.Fatal("a replaced code worked")
	}
	if c, ok := useCode(t, f, alice.ID, "email", "new"); !ok || c.Target != "b@example.com" {
		t.Fatalf("the replacing code: %v %+v", ok, c)
	}
}

func testAccountCodeTries(t *testing.T, f fixture) {
	alice := mustUser(t, f.db, "alice")
	setCode(t, f, alice.ID, "stepup", "", "right")
	for i := 0; i < 4; i++ {
		useCode(t, f, alice.ID, "stepup", "wrong")
	}
	if _, ok := useCode(t, f, alice.ID, "stepup", "right"); !ok {
		t.Fatal("the right code after 4 wrong tries was refused")
	}
	setCode(t, f, alice.ID, "stepup", "", "right") // a new code: its tries start at 0
	for i := 0; i < 5; i++ {
		useCode(t, f, alice.ID, "stepup", "wrong")
	}
	if _, ok := useCode(t, f, alice.ID, "stepup", "right"); ok {
		t.Fatal("the right code after 5 wrong tries worked")
	}
}

func testAccountCodeConcurrent(t *testing.T, f fixture) {
	alice := mustUser(t, f.db, "alice")
	for round := range 10 {
		mac := fmt.Sprintf("code-%d", round)
		setCode(t, f, alice.ID, "email", "x@example.com", mac)
		wins := race(t, 4, func(int) (bool, error) {
			_, ok, err := f.db.UseAccountCode(ctx, alice.ID, "email", []byte(mac), 5)
			return ok, err
		})
		if wins != 1 {
			t.Fatalf("round %d: %d of 4 concurrent uses of one code won, want 1", round, wins)
		}
	}
	// Wrong tries at once never count past the bound: the right code then
	// still fails, as after five in a row.
	setCode(t, f, alice.ID, "email", "", "right")
	race(t, 8, func(int) (bool, error) {
		_, ok, err := f.db.UseAccountCode(ctx, alice.ID, "email", []byte("wrong"), 5)
		return ok, err
	})
	if _, ok := useCode(t, f, alice.ID, "email", "right"); ok {
		t.Fatal("the right code worked after 8 concurrent wrong tries")
	}
}

func testAccountCodeExpires(t *testing.T, f fixture) {
	alice := mustUser(t, f.db, "alice")
	setCode(t, f, alice.ID, "email", "x@example.com", "m")
	if c, err := f.db.AccountCodeFor(ctx, alice.ID, "email"); err != nil || c.Target != "x@example.com" {
		t.Fatalf("pending: %v %+v", err, c)
	}
	f.clock.Advance(5*time.Minute + time.Second)
	if _, err := f.db.AccountCodeFor(ctx, alice.ID, "email"); err == nil {
		t.Fatal("an expired code is pending")
	}
	if _, ok := useCode(t, f, alice.ID, "email", "m"); ok {
		t.Fatal("an expired code worked")
	}
	n, err := f.db.DeleteExpired(ctx, storage.Retention{SessionIdle: time.Hour, FailureMemory: time.Hour, AuthRequestAge: time.Hour}, 100)
	if err != nil || n["account_codes"] != 1 {
		t.Fatalf("cleanup: %v %v", n, err)
	}
}
