package keys

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stile-id/stile/storage"
)

// DefaultRotation is how long a key signs before the automatic rotation
// replaces it (`stile serve --key-rotation`).
const DefaultRotation = 90 * 24 * time.Hour

// RotationOverlap is how long an automatically rotated key is published
// before it signs. Verifiers that refetch the JWKS on an unknown kid need
// no overlap at all; the ones that only refresh on a schedule need one at
// least as long as their cache. Those schedules run from minutes to a day
// (a daily refresh is the common advice for key rollover), and stile's
// JWKS sets no caching lifetime of its own, so a day covers them. An
// automatic rotation is never urgent, so waiting costs nothing; a
// suspected compromise is the operator's `stile keys rotate`, with its own
// --activate-after.
const RotationOverlap = 24 * time.Hour

// SigningSince is when k started signing: its activation, or its creation
// for rows that predate activated_at.
func SigningSince(k storage.SigningKey) time.Time {
	if k.ActivatedAt.Valid {
		return k.ActivatedAt.Time
	}
	return k.CreatedAt
}

// RotationDue is when the automatic rotation publishes k's successor: a
// period after it started signing.
func RotationDue(k storage.SigningKey, period time.Duration) time.Time {
	return SigningSince(k).Add(period)
}

// Due returns the active keys that, at now, have signed for period or
// longer and that no next key is waiting to replace: the default, and the
// key of each algorithm clients pin. A next key of the same algorithm
// replaces a key; a next default (an algorithm switch under way) replaces
// the default too. period <= 0 is off: nothing is due.
func Due(stored []storage.SigningKey, now time.Time, period time.Duration) []storage.SigningKey {
	if period <= 0 {
		return nil
	}
	var due []storage.SigningKey
	for _, k := range stored {
		if k.State != storage.KeyActive || now.Before(RotationDue(k, period)) {
			continue
		}
		if !Replacing(stored, k) {
			due = append(due, k)
		}
	}
	return due
}

// Replacing reports whether a next key waits to replace k: one of its
// algorithm, or for the default any next default.
func Replacing(stored []storage.SigningKey, k storage.SigningKey) bool {
	return slices.ContainsFunc(stored, func(n storage.SigningKey) bool {
		return n.State == storage.KeyNext && (n.Algorithm == k.Algorithm || k.Default && n.Default)
	})
}

// Rotation is a next key the automatic rotation published.
type Rotation struct {
	Next     *storage.SigningKey
	Replaces storage.SigningKey
}

// RotateDue publishes a successor for every key Due at the manager's now:
// a key of the same algorithm, the default if the key it replaces is,
// that starts signing after RotationOverlap. Until then every instance
// publishes it in its JWKS (storage/cache.go carries the change); then
// the first instance to look promotes it, the others follow at their next
// look (within a second through the cache, a minute at most), and the old
// key stays published until every token it signed has expired (Promote).
//
// Every instance calls it; each key is checked again in the transaction
// that stores its successor, so exactly one successor is stored however
// many call at once. It returns the rotations this call made: none for an
// instance that lost the race.
func (m *Manager) RotateDue(ctx context.Context, period time.Duration) ([]Rotation, error) {
	if period <= 0 {
		return nil, nil
	}
	stored, err := m.db.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	// In the store's precision, so the promotion at exactly now+overlap
	// finds the key due.
	now := m.now().UTC().Truncate(time.Microsecond)
	var done []Rotation
	for _, k := range Due(stored, now, period) {
		next, err := m.generate(k.Algorithm, storage.KeyNext, k.Default)
		if err != nil {
			return done, err
		}
		next.ActivateAfter.Time, next.ActivateAfter.Valid = now.Add(RotationOverlap), true
		ok, err := m.db.CreateRotationKey(ctx, next, k.ID, now.Add(-period))
		if err != nil {
			return done, fmt.Errorf("rotate signing key %s: %w", k.ID, err)
		}
		if ok {
			done = append(done, Rotation{Next: next, Replaces: k})
		}
	}
	if len(done) > 0 {
		m.invalidate()
	}
	return done, nil
}
