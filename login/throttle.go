package login

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// Throttling policy. Every guess — a password, a one-time code — is counted
// in the database before it is evaluated (storage.ReserveAttempt), so no
// number of concurrent guesses on any number of instances evaluates more
// than the counts allow. A guess counts against:
//
//   - the pair of account and source address ("pair:<account>:addr:…"):
//     FailuresPerPair free, then a lock of 30 s doubling up to 15 min. This
//     is what stops a guesser, and it stops only the guesser: the owner
//     elsewhere is not affected.
//   - the account ("account:<account>"): a much higher ceiling,
//     FailuresPerAccount (100, NIST SP 800-63B §5.2.2), then AccountLock
//     per further failure, against guessing spread over many addresses. A
//     browser with the account's device cookie is exempt (it counts
//     against "device:<id>" instead, with the pair's policy), so a
//     distributed attacker cannot keep the owner out.
//   - the source address ("addr:…", IPv6 by /64): FailuresPerAddress free,
//     then the escalating lock, against spraying one password over many
//     accounts. Device-cookie browsers are exempt here too.
//
// <account> is "user:<id>" for a known account and "name:<hmac>" of the
// normalised username for an unknown one, so a locked account and an
// unknown one behave alike. Locks always expire: an attacker can slow a
// user down but never lock them out for good. Counts are forgotten after
// forgetAfter without a failure; a right guess is given back, and a
// completed sign-in clears the pair, the address and (if it counted
// against it) the account.
const (
	freeFailures = 5
	firstLock    = 30 * time.Second
	maxLock      = 15 * time.Minute
	forgetAfter  = time.Hour
)

// lockFor is the pair's lock after failures consecutive failures.
func lockFor(failures int) time.Duration { return escalate(freeFailures)(failures) }

// escalate returns the lock policy with free failures before a lock of
// firstLock, doubling with each further failure up to maxLock.
func escalate(free int) func(int) time.Duration {
	return func(failures int) time.Duration {
		if failures < free {
			return 0
		}
		d := firstLock
		for i := free; i < failures && d < maxLock; i++ {
			d *= 2
		}
		return min(d, maxLock)
	}
}

// ceiling returns the account's policy: no lock below limit failures, then
// lock for each failure at or above it.
func ceiling(limit int, lock time.Duration) func(int) time.Duration {
	return func(failures int) time.Duration {
		if failures < limit {
			return 0
		}
		return lock
	}
}

// throttle counts guesses in the database, so every instance sees them.
type throttle struct {
	db     *storage.DB
	pepper []byte // HMAC key for unknown usernames
	limits *Limits
	count  Counter
}

// account is how the counts name an account: its ID if it exists, an HMAC
// of the normalised name if not.
func (t *throttle) account(user *storage.User, username string) string {
	if user != nil {
		return "user:" + user.ID
	}
	mac := hmac.New(sha256.New, t.pepper)
	mac.Write([]byte(storage.UsernameKey(username)))
	return "name:" + hex.EncodeToString(mac.Sum(nil))
}

// guess is what one password or code attempt counts against.
type guess struct {
	pair, account, address, device string // subjects; account and address, or device, are ""
	claims                         []storage.Claim
}

// guessFor is the guess of account from addr, from a browser showing
// device (nil unless its device cookie names this account's user).
func (t *throttle) guessFor(account string, addr netip.Addr, device *Device) *guess {
	src := clientip.Subject(addr)
	free := escalate(t.limits.FailuresPerPair)
	g := &guess{pair: "pair:" + account + ":" + src}
	g.claims = append(g.claims, storage.Claim{Subject: g.pair, LockFor: free})
	if device != nil {
		g.device = "device:" + device.ID
		g.claims = append(g.claims, storage.Claim{Subject: g.device, LockFor: free})
		return g
	}
	g.account, g.address = "account:"+account, src
	g.claims = append(g.claims,
		storage.Claim{Subject: g.account, LockFor: ceiling(t.limits.FailuresPerAccount, t.limits.AccountLock)},
		storage.Claim{Subject: g.address, LockFor: escalate(t.limits.FailuresPerAddress)})
	return g
}

func (g *guess) subjects() []string {
	var out []string
	for _, s := range []string{g.pair, g.account, g.address, g.device} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// reserve counts the guess before it is evaluated, or fails with
// CodeThrottled while one of its subjects is locked.
func (t *throttle) reserve(ctx context.Context, g *guess, now time.Time) error {
	r, err := t.db.ReserveAttempt(ctx, now.Add(-forgetAfter), g.claims)
	if err != nil {
		return internal(err)
	}
	if !r.Allowed {
		t.count.Throttled("lock")
		return throttled(msgThrottled, r.RetryAfter)
	}
	return nil
}

// release gives back a reserved guess that was right or never evaluated.
func (t *throttle) release(ctx context.Context, g *guess) error {
	if err := t.db.ReleaseAttempt(ctx, g.subjects()...); err != nil {
		return internal(err)
	}
	return nil
}

// success forgets the consecutive failures a completed sign-in ends: the
// pair's, the address's (NIST SP 800-63B §5.2.2: disregard earlier
// failures from the address after a success), the device's, and the
// account's if this sign-in counted against it. A device-cookie sign-in
// does not clear the account: a distributed attacker's count stands.
func (t *throttle) success(ctx context.Context, g *guess) error {
	if err := t.db.ClearFailures(ctx, g.subjects()...); err != nil {
		return internal(err)
	}
	return nil
}

// hit counts one request of purpose from addr against rate, shared by
// every instance, and fails with CodeThrottled beyond it.
func (t *throttle) hit(ctx context.Context, purpose string, rate storage.Rate, addr netip.Addr) error {
	ok, wait, err := t.db.Hit(ctx, purpose+":"+clientip.Subject(addr), rate)
	if err != nil {
		return internal(err)
	}
	if !ok {
		t.count.Throttled(purpose)
		return throttled(msgBusyAddress, wait)
	}
	return nil
}

const msgBusyAddress = "Too many sign-in attempts from your network."

// throttled is a 429 that says, in words and in Retry-After, how long to
// wait.
func throttled(msg string, wait time.Duration) *Error {
	e := fail(CodeThrottled, msg+" "+tryAgainIn(wait))
	e.RetryAfter = wait
	return e
}

// tryAgainIn says how long to wait, rounded up: "Try again in 30 seconds.",
// "Try again in 2 minutes."
func tryAgainIn(d time.Duration) string {
	if d <= time.Minute {
		s := max(int(math.Ceil(d.Seconds())), 1)
		return fmt.Sprintf("Try again in %d %s.", s, plural(s, "second"))
	}
	m := int(math.Ceil(d.Minutes()))
	return fmt.Sprintf("Try again in %d %s.", m, plural(m, "minute"))
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
