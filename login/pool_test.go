package login_test

import (
	"errors"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stile-id/stile/login"
)

// blockingHasher holds every Verify until release is closed; entered
// receives one value per Verify that started.
type blockingHasher struct {
	entered chan struct{}
	release chan struct{}
	err     error // returned after release, to check a failed hash frees its slot
}

func (b *blockingHasher) Hash(string) (string, error) { return "hash", nil }

func (b *blockingHasher) Verify(string, string) (bool, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.err == nil, b.err
}

func newBlocking() *blockingHasher {
	return &blockingHasher{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func TestPoolBoundsConcurrentHashes(t *testing.T) {
	h := newBlocking()
	p := login.NewPool(h, 2, 10*time.Millisecond, nil)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if ok, err := p.Verify("e", "p"); !ok || err != nil {
				t.Errorf("a check in a slot: %v %v", ok, err)
			}
		})
	}
	<-h.entered
	<-h.entered // both slots are taken and held

	// A third check waits out its short wait and is refused, without
	// ever reaching the hasher; so is a new hash.
	_, err := p.Verify("e", "p")
	if !errors.Is(err, login.ErrBusy) {
		t.Fatalf("third check with both slots held: %v, want ErrBusy", err)
	}
	if _, err := p.Hash("p"); !errors.Is(err, login.ErrBusy) {
		t.Fatalf("hash with both slots held: %v, want ErrBusy", err)
	}
	if len(h.entered) != 0 || p.Busy() != 2 {
		t.Fatalf("%d refused checks reached the hasher; Busy() = %d, want 0 and 2", len(h.entered), p.Busy())
	}
	e := login.AsError(err)
	if e.Code != login.CodeBusy || e.Status() != http.StatusServiceUnavailable || e.RetryAfter <= 0 {
		t.Fatalf("ErrBusy as a login error: %s %d retry %s, want %s 503 with a Retry-After", e.Code, e.Status(), e.RetryAfter, login.CodeBusy)
	}

	// Positive control: once the held checks finish, their slots are free.
	close(h.release)
	wg.Wait()
	if ok, err := p.Verify("e", "p"); !ok || err != nil {
		t.Fatalf("check after the slots were freed: %v %v", ok, err)
	}
}

func TestPoolWaitsForASlot(t *testing.T) {
	h := newBlocking()
	p := login.NewPool(h, 1, time.Minute, nil) // a wait no test reaches
	first := make(chan error, 1)
	go func() { _, err := p.Verify("e", "p"); first <- err }()
	<-h.entered
	second := make(chan error, 1)
	go func() { _, err := p.Verify("e", "p"); second <- err }()
	// The second check is waiting for the slot, not refused: it enters the
	// hasher as soon as the first leaves.
	select {
	case err := <-second:
		t.Fatalf("the waiting check returned %v before the slot was free", err)
	default:
	}
	close(h.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	<-h.entered
	if err := <-second; err != nil {
		t.Fatalf("the waiting check: %v, want it to get the freed slot", err)
	}
}

func TestPoolFreesTheSlotOfAFailedHash(t *testing.T) {
	h := newBlocking()
	h.err = errors.New("not a PHC string")
	close(h.release)
	p := login.NewPool(h, 1, 10*time.Millisecond, nil)
	for i := range 3 {
		if _, err := p.Verify("e", "p"); err == nil || errors.Is(err, login.ErrBusy) {
			t.Fatalf("check %d: %v, want the hasher's own error (its slot freed after each)", i, err)
		}
	}
}

func TestPoolSize(t *testing.T) {
	cores := runtime.GOMAXPROCS(0)
	a := login.DefaultArgon2id // 64 MiB a hash
	for _, c := range []struct {
		budget int64
		want   int
	}{
		{64 << 30, max(2, 2*cores)}, // plenty of memory: two per core
		{128 << 20, min(2, max(2, 2*cores))},
		{64 << 20, 1},
		{1 << 20, 1}, // never none: the login must still work
	} {
		if got := login.PoolSize(a, c.budget); got != c.want {
			t.Errorf("PoolSize(%d MiB) on %d cores = %d, want %d", c.budget>>20, cores, got, c.want)
		}
	}
}
