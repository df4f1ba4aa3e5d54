package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	err := d.get(ctx, d.db, &f, q, subject)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("get failed attempts: %w", err)
	}
	return &f, nil
}

// RecordFailure counts one more failure for the subject, forgetting earlier
// ones last seen before forgetBefore, and sets the lock that lockFor
// computes from the new count (zero: no lock). It returns the new counter.
func (d *DB) RecordFailure(ctx context.Context, subject string, forgetBefore time.Time,
	lockFor func(failures int) time.Duration) (*FailedAttempts, error) {
	now := d.Now()
	var out FailedAttempts
	err := d.tx(ctx, func(q queryer) error {
		const upsert = `INSERT INTO failed_attempts (subject, failures, last_failure_at) VALUES (?, 1, ?)
			ON CONFLICT (subject) DO UPDATE SET
				failures = CASE WHEN failed_attempts.last_failure_at < ? THEN 1 ELSE failed_attempts.failures + 1 END,
				last_failure_at = excluded.last_failure_at
			RETURNING subject, failures, last_failure_at, locked_until`
		if err := d.get(ctx, q, &out, upsert, subject, now, forgetBefore.UTC()); err != nil {
			return err
		}
		out.LockedUntil = sql.NullTime{}
		if lock := lockFor(out.Failures); lock > 0 {
			out.LockedUntil = sql.NullTime{Time: now.Add(lock), Valid: true}
		}
		_, err := d.exec(ctx, q, `UPDATE failed_attempts SET locked_until = ? WHERE subject = ?`, out.LockedUntil, subject)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record failure: %w", err)
	}
	return &out, nil
}

// ClearFailures forgets the subject's failures after a successful sign-in.
func (d *DB) ClearFailures(ctx context.Context, subject string) error {
	if _, err := d.exec(ctx, d.db, `DELETE FROM failed_attempts WHERE subject = ?`, subject); err != nil {
		return fmt.Errorf("clear failures: %w", err)
	}
	return nil
}
