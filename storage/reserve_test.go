package storage_test

import (
	"testing"
	"time"

	"github.com/stile-id/stile/internal/clocktest"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestReserve: guesses are counted before they are evaluated, on SQLite,
// on PostgreSQL, and on two pools (two instances) over one PostgreSQL.
func TestReserve(t *testing.T) {
	tests := []struct {
		name string
		fn   func(*testing.T, fixture)
	}{
		{"Sequential", testReserveSequential},
		{"AllOrNothing", testReserveAllOrNothing},
		{"OTPSlots", testReserveOTPSlots},
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStoreFixture(t, d)) })
			}
			t.Run("Concurrent", func(t *testing.T) {
				url := d.URL(t)
				clock := clocktest.New(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
				dbs := []*storage.DB{storagetest.Open(t, url, storage.WithClock(clock.Now))}
				if d.Name == "postgres" { // a second instance's pool on the same database
					dbs = append(dbs, storagetest.Open(t, url, storage.WithClock(clock.Now)))
				}
				testReserveConcurrent(t, dbs, fixture{db: dbs[0], clock: clock})
			})
		})
	}
}

func lockAt(n int, d time.Duration) func(int) time.Duration {
	return func(failures int) time.Duration {
		if failures >= n {
			return d
		}
		return 0
	}
}

func testReserveSequential(t *testing.T, f fixture) {
	claims := []storage.Claim{{Subject: "pair:a", LockFor: lockAt(3, time.Minute)}}
	forget := func() time.Time { return f.clock.Now().Add(-time.Hour) }
	for i := 1; i <= 3; i++ {
		r, err := f.db.ReserveAttempt(ctx, forget(), claims)
		if err != nil || !r.Allowed || r.Failures["pair:a"] != i {
			t.Fatalf("guess %d: %+v, %v", i, r, err)
		}
	}
	// The third guess set the lock: the fourth is refused and not counted.
	r, err := f.db.ReserveAttempt(ctx, forget(), claims)
	if err != nil || r.Allowed || r.RetryAfter != time.Minute {
		t.Fatalf("locked: %+v, %v; want refused for 1m", r, err)
	}
	if got, _ := f.db.GetFailedAttempts(ctx, "pair:a"); got.Failures != 3 {
		t.Fatalf("a refused guess was counted: %+v", got)
	}
	// A right third guess is given back: count 2, no lock; the next is allowed.
	if err := f.db.ReleaseAttempt(ctx, "pair:a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.db.GetFailedAttempts(ctx, "pair:a"); got.Failures != 2 || got.LockedUntil.Valid {
		t.Fatalf("after release: %+v", got)
	}
	if r, _ := f.db.ReserveAttempt(ctx, forget(), claims); !r.Allowed || r.Failures["pair:a"] != 3 {
		t.Fatalf("after release: %+v", r)
	}
	// The lock ends on its own; failures older than the forget window start over.
	f.clock.Advance(time.Minute + time.Second)
	if r, _ := f.db.ReserveAttempt(ctx, forget(), claims); !r.Allowed || r.Failures["pair:a"] != 4 {
		t.Fatalf("after the lock: %+v", r)
	}
	f.clock.Advance(2 * time.Hour)
	if r, _ := f.db.ReserveAttempt(ctx, forget(), claims); !r.Allowed || r.Failures["pair:a"] != 1 {
		t.Fatalf("after the forget window: %+v", r)
	}
	if err := f.db.ClearFailures(ctx, "pair:a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.db.GetFailedAttempts(ctx, "pair:a"); got.Failures != 0 {
		t.Fatalf("after clear: %+v", got)
	}
}

// testReserveAllOrNothing: one locked subject refuses the whole guess,
// and counts none of its other subjects.
func testReserveAllOrNothing(t *testing.T, f fixture) {
	forget := f.clock.Now().Add(-time.Hour)
	lockFirst := []storage.Claim{{Subject: "account:x", LockFor: lockAt(1, time.Minute)}}
	if r, _ := f.db.ReserveAttempt(ctx, forget, lockFirst); !r.Allowed {
		t.Fatal("first guess refused")
	}
	both := []storage.Claim{{Subject: "pair:x", LockFor: lockAt(5, time.Minute)}, lockFirst[0]}
	if r, _ := f.db.ReserveAttempt(ctx, forget, both); r.Allowed {
		t.Fatal("a guess with a locked subject was allowed")
	}
	if got, _ := f.db.GetFailedAttempts(ctx, "pair:x"); got.Failures != 0 {
		t.Fatalf("the unlocked subject of a refused guess was counted: %+v", got)
	}
	// Positive control: without the locked subject, the pair counts.
	if r, _ := f.db.ReserveAttempt(ctx, forget, both[:1]); !r.Allowed || r.Failures["pair:x"] != 1 {
		t.Fatalf("pair alone: %+v", r)
	}
}

func testReserveOTPSlots(t *testing.T, f fixture) {
	mustTx(t, f, "tx1")
	forget := f.clock.Now().Add(-time.Hour)
	claims := []storage.Claim{{Subject: "pair:t", LockFor: lockAt(100, time.Minute)}}
	for i := 1; i <= 3; i++ {
		r, err := f.db.ReserveOTPAttempt(ctx, "tx1", 3, forget, claims)
		if err != nil || !r.Allowed || r.Spent || r.OTPFailures != i {
			t.Fatalf("slot %d: %+v, %v", i, r, err)
		}
	}
	if r, _ := f.db.ReserveOTPAttempt(ctx, "tx1", 3, forget, claims); r.Allowed || !r.Spent {
		t.Fatalf("a fourth slot of three: %+v", r)
	}
	if got, _ := f.db.GetFailedAttempts(ctx, "pair:t"); got.Failures != 3 {
		t.Fatalf("the spent guess was counted against its subject: %+v", got)
	}
	if tx := mustGetTx(t, f, "tx1"); tx.State != storage.TxOTP {
		t.Fatalf("reserving killed the transaction before the guess was evaluated: %q", tx.State)
	}
	if err := f.db.KillSpentTransaction(ctx, "tx1", 3); err != nil {
		t.Fatal(err)
	}
	if tx := mustGetTx(t, f, "tx1"); tx.State != storage.TxDead {
		t.Fatalf("spent transaction: %q, want dead", tx.State)
	}
	// A locked subject refuses the guess and gives the slot back.
	mustTx(t, f, "tx2")
	locked := []storage.Claim{{Subject: "account:t", LockFor: lockAt(1, time.Minute)}}
	if r, _ := f.db.ReserveOTPAttempt(ctx, "tx2", 3, forget, locked); !r.Allowed {
		t.Fatal("first guess on tx2 refused")
	}
	if r, _ := f.db.ReserveOTPAttempt(ctx, "tx2", 3, forget, locked); r.Allowed || r.Spent || r.RetryAfter != time.Minute {
		t.Fatalf("locked subject: %+v", r)
	}
	if tx := mustGetTx(t, f, "tx2"); tx.OTPFailures != 1 {
		t.Fatalf("a refused guess kept its slot: %d used", tx.OTPFailures)
	}
	// Positive control: a transaction with slots left and a transaction not
	// killed while some remain.
	if err := f.db.KillSpentTransaction(ctx, "tx2", 3); err != nil {
		t.Fatal(err)
	}
	if tx := mustGetTx(t, f, "tx2"); tx.State != storage.TxOTP {
		t.Fatalf("a transaction with tries left was killed: %q", tx.State)
	}
}

// testReserveConcurrent: 16 guesses at once, spread over the pools, never
// reserve more than the limit, for a subject and for a transaction's slots.
func testReserveConcurrent(t *testing.T, dbs []*storage.DB, f fixture) {
	forget := f.clock.Now().Add(-time.Hour)
	claims := []storage.Claim{{Subject: "pair:c", LockFor: lockAt(5, time.Minute)}, {Subject: "addr:c", LockFor: lockAt(20, time.Minute)}}
	won := race(t, 16, func(i int) (bool, error) {
		r, err := dbs[i%len(dbs)].ReserveAttempt(ctx, forget, claims)
		return err == nil && r.Allowed, err
	})
	if won != 5 {
		t.Fatalf("%d of 16 concurrent guesses reserved, want exactly 5", won)
	}
	if got, _ := f.db.GetFailedAttempts(ctx, "addr:c"); got.Failures != 5 {
		t.Fatalf("the address counted %d, want 5 (refused guesses count nothing)", got.Failures)
	}
	mustClient(t, f.db, "app")
	mustTx(t, f, "txc")
	won = race(t, 16, func(i int) (bool, error) {
		r, err := dbs[i%len(dbs)].ReserveOTPAttempt(ctx, "txc", 5, forget, []storage.Claim{{Subject: "pair:d", LockFor: lockAt(100, 0)}})
		return err == nil && r.Allowed, err
	})
	if won != 5 {
		t.Fatalf("%d of 16 concurrent codes reserved a slot, want exactly 5", won)
	}
}
