package login

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"time"

	"github.com/stile-id/stile/storage"
)

// Throttling policy. Failed passwords and failed codes count against the
// account (or, for a name that is no account, against an HMAC of the name,
// so a locked account and an unknown one behave alike). After freeFailures
// consecutive failures each further one locks the account for twice as long
// as the last, from 30 s up to maxLock. Locks always expire — an attacker
// can slow a user down but never lock them out for good — and at the cap an
// attacker gets four guesses an hour, far below NIST's 100. Failures older
// than forgetAfter are forgotten; a completed sign-in forgets them all.
const (
	freeFailures = 5
	firstLock    = 30 * time.Second
	maxLock      = 15 * time.Minute
	forgetAfter  = time.Hour
)

func lockFor(failures int) time.Duration {
	if failures < freeFailures {
		return 0
	}
	d := firstLock
	for i := freeFailures; i < failures && d < maxLock; i++ {
		d *= 2
	}
	return min(d, maxLock)
}

// throttle counts failures in the database, so every instance sees them.
type throttle struct {
	db     *storage.DB
	pepper []byte // HMAC key for unknown usernames
}

func userSubject(userID string) string { return "user:" + userID }

func (t *throttle) nameSubject(username string) string {
	mac := hmac.New(sha256.New, t.pepper)
	mac.Write([]byte(storage.UsernameKey(username)))
	return "name:" + hex.EncodeToString(mac.Sum(nil))
}

// check fails with CodeThrottled while the subject is locked.
func (t *throttle) check(ctx context.Context, subject string, now time.Time) error {
	f, err := t.db.GetFailedAttempts(ctx, subject)
	if err != nil {
		return internal(err)
	}
	if f.LockedUntil.Valid && now.Before(f.LockedUntil.Time) {
		e := fail(CodeThrottled, msgThrottled)
		e.RetryAfter = f.LockedUntil.Time.Sub(now)
		return e
	}
	return nil
}

func (t *throttle) failure(ctx context.Context, subject string, now time.Time) error {
	_, err := t.db.RecordFailure(ctx, subject, now.Add(-forgetAfter), lockFor)
	return err
}

// addressFreeFailures is how many wrong passwords one end-user address
// (as a direct-mode backend reports it) may send before it is locked like
// an account: more than an account's, since an office or a mobile carrier
// puts many honest users behind one address.
const addressFreeFailures = 20

// addressSubject is the throttling subject of an end user's address:
// wrong passwords from one address count against it whatever the username.
// An IPv6 address counts by its /64, which one user usually holds whole.
// Without an address there is none: a backend's own address is all its
// users'.
func addressSubject(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return ""
	case ip.Is6():
		p, _ := ip.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + ip.String()
}

func (t *throttle) addressFailure(ctx context.Context, subject string, now time.Time) error {
	_, err := t.db.RecordFailure(ctx, subject, now.Add(-forgetAfter), func(n int) time.Duration {
		return lockFor(n - (addressFreeFailures - freeFailures))
	})
	return err
}

func (t *throttle) success(ctx context.Context, subject string) error {
	return t.db.ClearFailures(ctx, subject)
}
