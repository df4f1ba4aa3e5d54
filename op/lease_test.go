package op

import (
	"context"
	"testing"
	"time"

	"github.com/stile-id/stile/internal/clocktest"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestTokenLeases: one instance admits exactly the limit in a window and
// refuses the next request until the window ends; two instances drawing on
// one counter together never admit more than the limit, and at most
// leaseMax-1 fewer each; a small limit is counted one hit at a time.
func TestTokenLeases(t *testing.T) {
	ctx := context.Background()
	clock := clocktest.New(time.Now())
	dbURL := storagetest.SQLite(t)
	db := storagetest.Open(t, dbURL, storage.WithClock(clock.Now))
	rate := storage.Rate{Limit: 800, Per: time.Minute}
	if leaseSize(rate) != leaseMax {
		t.Fatalf("lease size %d for %v", leaseSize(rate), rate)
	}
	admitted := func(l *tokenLeases, key string, r storage.Rate, n int) int {
		t.Helper()
		got := 0
		for range n {
			ok, retry, err := l.admit(ctx, key, r)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				got++
			} else if retry <= 0 {
				t.Fatalf("refused without a Retry-After")
			}
		}
		return got
	}

	one := newTokenLeases(db)
	if got := admitted(one, "a", rate, rate.Limit+5); got != rate.Limit {
		t.Fatalf("one instance admitted %d of %d, want exactly the limit %d", got, rate.Limit+5, rate.Limit)
	}
	clock.Advance(time.Minute)
	if got := admitted(one, "a", rate, 1); got != 1 {
		t.Fatal("the next window refuses the first request")
	}

	// Two instances, their own store each, requests alternating.
	other := newTokenLeases(storagetest.Open(t, dbURL, storage.WithClock(clock.Now)))
	total := 0
	for range rate.Limit {
		total += admitted(one, "b", rate, 1) + admitted(other, "b", rate, 1)
	}
	if total > rate.Limit || total < rate.Limit-2*(leaseMax-1) {
		t.Fatalf("two instances admitted %d, want at most %d and at least %d", total, rate.Limit, rate.Limit-2*(leaseMax-1))
	}

	small := storage.Rate{Limit: 5, Per: time.Minute}
	if got := admitted(one, "c", small, 5) + admitted(other, "c", small, 5); got != 5 {
		t.Fatalf("a small limit across two instances admitted %d, want exactly 5", got)
	}
}
