package op

import (
	"context"
	"sync"
	"time"

	"github.com/stile-id/stile/storage"
)

// The token endpoint's per-address limit is counted in the database, so it
// holds across instances; counting every request there cost a statement
// per token request (a fifth of a refresh's CPU with ES256). An instance
// instead takes a lease of a few hits from the shared counter at once
// (storage.HitN) and spends it in memory until it is gone or the window
// ends. The leased hits are counted when taken, so all instances together
// never admit more than the limit; hits leased and not spent count as used,
// so an address may be refused up to leaseMax-1 requests per instance
// early in a window — a small fraction of the default 1,200 a minute.
// Small limits (under 100) lease one hit at a time: exact, as before.
const leaseMax = 8

// leaseSize is how many hits one database statement takes for r.
func leaseSize(r storage.Rate) int { return min(leaseMax, max(r.Limit/100, 1)) }

// maxLeases bounds the memory many addresses can make the leases take;
// past it the expired ones go, and if that is not enough, all of them (a
// lost lease only makes its address's limit stricter).
const maxLeases = 10000

type lease struct {
	left  int
	until time.Time // the end of the counter's window
}

type tokenLeases struct {
	db *storage.DB
	mu sync.Mutex
	m  map[string]*lease
}

func newTokenLeases(db *storage.DB) *tokenLeases {
	return &tokenLeases{db: db, m: map[string]*lease{}}
}

// admit reports whether one more request under key is within r, and if
// not, how long until it may retry.
func (l *tokenLeases) admit(ctx context.Context, key string, r storage.Rate) (bool, time.Duration, error) {
	n := leaseSize(r)
	if n <= 1 || r.Limit <= 0 {
		return l.db.Hit(ctx, key, r)
	}
	now := l.db.Now()
	l.mu.Lock()
	if e := l.m[key]; e != nil && e.left > 0 && now.Before(e.until) {
		e.left--
		l.mu.Unlock()
		return true, 0, nil
	}
	l.mu.Unlock()
	granted, end, err := l.db.HitN(ctx, key, r, n)
	if err != nil {
		return false, 0, err
	}
	if granted == 0 {
		return false, max(end.Sub(now), time.Second), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) >= maxLeases {
		for k, e := range l.m {
			if e.left == 0 || !now.Before(e.until) {
				delete(l.m, k)
			}
		}
		if len(l.m) >= maxLeases {
			clear(l.m)
		}
	}
	l.m[key] = &lease{left: granted - 1, until: end}
	return true, 0, nil
}
