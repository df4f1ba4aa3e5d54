package storage_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
)

// testRateLimits: of many concurrent hits at most the limit pass; the
// window ends, and another key has its own count.
func testRateLimits(t *testing.T, f fixture) {
	ctx := context.Background()
	r := storage.Rate{Limit: 5, Per: time.Minute}
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, _, err := f.db.Hit(ctx, "test:a", r)
			if err != nil {
				t.Error(err)
			}
			if ok {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != 5 {
		t.Fatalf("%d of 20 concurrent hits allowed, want 5", n)
	}
	ok, wait, err := f.db.Hit(ctx, "test:a", r)
	if err != nil || ok || wait <= 0 || wait > time.Minute {
		t.Fatalf("over the limit: ok=%v wait=%s err=%v, want refused with a wait of at most a minute", ok, wait, err)
	}
	if ok, _, _ := f.db.Hit(ctx, "test:b", r); !ok {
		t.Fatal("another key was refused")
	}
	f.clock.Advance(time.Minute)
	if ok, _, err := f.db.Hit(ctx, "test:a", r); err != nil || !ok {
		t.Fatalf("after the window: ok=%v err=%v, want allowed", ok, err)
	}
	f.clock.Advance(storage.RateWindowMax + time.Hour)
	if _, err := f.db.DeleteExpired(ctx, storage.Retention{}, 100); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := f.db.Hit(ctx, "test:a", storage.Rate{Limit: 1, Per: time.Minute}); err != nil || !ok {
		t.Fatalf("after cleanup: ok=%v err=%v, want a fresh count", ok, err)
	}
}
