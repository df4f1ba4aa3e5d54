package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// FailedAttempts counts consecutive failed sign-in steps for one subject: a
// known account ("user:<id>") or an unknown username ("name:<hmac>"), so
// that a locked account and an unknown one behave alike.
type FailedAttempts struct {
	Subject       string       `db:"subject"`
	Failures      int          `db:"failures"`
	LastFailureAt time.Time    `db:"last_failure_at"`
	LockedUntil   sql.NullTime `db:"locked_until"`
}

// GetFailedAttempts returns the subject's counter; a subject without
// failures gets a zero counter, not an error.
func (d *DB) GetFailedAttempts(ctx context.Context, subject string) (*FailedAttempts, error) {
	f := FailedAttempts{Subject: subject}
	const q = `SELECT subject, failures, last_failure_at, locked_until FROM failed_attempts WHERE subject = ?`
	err := d.get(ctx, d.r, &f, q, subject)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("get failed attempts: %w", err)
	}
	return &f, nil
}

// ClearFailures forgets the subjects' failures after a successful sign-in.
func (d *DB) ClearFailures(ctx context.Context, subjects ...string) error {
	for _, s := range subjects {
		if _, err := d.exec(ctx, d.w, `DELETE FROM failed_attempts WHERE subject = ?`, s); err != nil {
			return fmt.Errorf("clear failures: %w", err)
		}
	}
	return nil
}

// Claim is one subject a guess counts against, and the lock that a count
// of consecutive failures implies (zero: none).
type Claim struct {
	Subject string
	LockFor func(failures int) time.Duration
}

// Reservation is the outcome of reserving a guess: allowed, or refused
// while a subject is locked, and until when; and each subject's count
// with this guess.
type Reservation struct {
	Allowed    bool
	RetryAfter time.Duration // refused: until the last of the locks ends
	Failures   map[string]int
}

// ReserveAttempt counts one guess against every claim before it is
// evaluated, in one transaction: if any subject is locked nothing is
// counted and the guess is refused; otherwise each count grows by one
// (starting over if its last failure was before forgetBefore) and each
// subject gets the lock its new count implies. So of N concurrent guesses
// on every instance, no more are evaluated than the counts allow. A guess
// that turns out right is given back with ReleaseAttempt or ClearFailures.
func (d *DB) ReserveAttempt(ctx context.Context, forgetBefore time.Time, claims []Claim) (*Reservation, error) {
	var out *Reservation
	err := d.tx(ctx, func(q queryer) error {
		var err error
		out, err = d.reserve(ctx, q, forgetBefore, claims)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reserve attempt: %w", err)
	}
	return out, nil
}

// reserve is ReserveAttempt inside the caller's transaction. Each row is
// locked by an upsert that changes nothing (PostgreSQL holds the row lock
// until commit; SQLite's write lock is taken at BEGIN), in subject order so
// that two guesses on the same subjects cannot deadlock.
func (d *DB) reserve(ctx context.Context, q queryer, forgetBefore time.Time, claims []Claim) (*Reservation, error) {
	claims = slices.Clone(claims)
	slices.SortFunc(claims, func(a, b Claim) int { return strings.Compare(a.Subject, b.Subject) })
	claims = slices.CompactFunc(claims, func(a, b Claim) bool { return a.Subject == b.Subject })
	now := d.Now()
	rows := make([]FailedAttempts, len(claims))
	const lock = `INSERT INTO failed_attempts (subject, failures, last_failure_at) VALUES (?, 0, ?)
		ON CONFLICT (subject) DO UPDATE SET failures = failed_attempts.failures
		RETURNING subject, failures, last_failure_at, locked_until`
	res := &Reservation{Allowed: true, Failures: map[string]int{}}
	for i, c := range claims {
		if err := d.get(ctx, q, &rows[i], lock, c.Subject, now); err != nil {
			return nil, err
		}
		if l := rows[i].LockedUntil; l.Valid && now.Before(l.Time) {
			res.Allowed, res.RetryAfter = false, max(res.RetryAfter, l.Time.Sub(now))
		}
	}
	if !res.Allowed {
		return res, nil
	}
	const update = `UPDATE failed_attempts SET failures = ?, last_failure_at = ?, locked_until = ? WHERE subject = ?`
	for i, c := range claims {
		n := rows[i].Failures + 1
		if rows[i].LastFailureAt.Before(forgetBefore.UTC()) {
			n = 1
		}
		var until sql.NullTime
		if l := c.LockFor(n); l > 0 {
			until = sql.NullTime{Time: now.Add(l), Valid: true}
		}
		if _, err := d.exec(ctx, q, update, n, now, until, c.Subject); err != nil {
			return nil, err
		}
		res.Failures[c.Subject] = n
	}
	return res, nil
}

// ReleaseAttempt gives back a reserved guess that was right, or that was
// never evaluated: each subject's count shrinks by one and its lock goes.
// The lock can only have been this guess's own: while a subject is locked
// no other guess is reserved on it, and counts below a lock imply none.
func (d *DB) ReleaseAttempt(ctx context.Context, subjects ...string) error {
	const q = `UPDATE failed_attempts SET failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END, locked_until = NULL
		WHERE subject = ?`
	for _, s := range subjects {
		if _, err := d.exec(ctx, d.w, q, s); err != nil {
			return fmt.Errorf("release attempt: %w", err)
		}
	}
	return nil
}
