package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage"
)

// Background maintenance: every minute each instance lets a due next
// signing key start signing, publishes the successor of a key that has
// signed for the rotation period (keys.Manager.RotateDue: one instance
// wins, every one publishes it), and deletes rows nobody can use any more —
// codes, logins, sessions, tokens, links, counters, retired keys — in
// batches of cleanupBatch per table, so no statement holds locks for long,
// batch after batch until nothing is left or cleanupBudget is spent, so
// cleanup keeps up with whatever rate the limits admit (one batch per table
// a minute once fell behind an /authorize flood). Several instances doing it
// at once is harmless.
const (
	maintainEvery = time.Minute
	cleanupBatch  = 1000
	cleanupBudget = 20 * time.Second
)

// maintenance returns one pass; rotation is the automatic key rotation
// period (0: off).
func maintenance(db *storage.DB, signing *keys.Manager, sessionIdle, events, rotation time.Duration, log *slog.Logger) func(context.Context) {
	retention := storage.Retention{SessionIdle: sessionIdle, FailureMemory: 24 * time.Hour, AuthRequestAge: time.Hour}
	return func(ctx context.Context) {
		deadline := time.Now().Add(cleanupBudget)
		if promoted, err := signing.Promote(ctx); err != nil {
			log.Error("promote signing key", "err", err)
		} else if promoted {
			log.Info("a new signing key now signs; the old one stays published until its tokens expire")
		}
		rotateKeys(ctx, db, signing, rotation, log)
		deleted, done, err := db.Sweep(ctx, retention, cleanupBatch, deadline)
		if err != nil {
			log.Error("delete expired rows", "err", err)
		}
		if len(deleted) > 0 {
			log.Info("deleted expired rows", "tables", deleted)
		}
		if err == nil && !done {
			rows, _ := db.CountRows(ctx)
			log.Warn("cleanup ran out of time; the rest waits for the next pass", "budget", cleanupBudget, "rows", rows)
		}
		expireEvents(ctx, db, events, deadline, log)
	}
}

// rotateKeys publishes the successor of every key that has signed for
// the rotation period, and records each rotation this instance made.
func rotateKeys(ctx context.Context, db *storage.DB, signing *keys.Manager, period time.Duration, log *slog.Logger) {
	done, err := signing.RotateDue(ctx, period)
	if err != nil {
		log.Error("rotate signing keys", "err", err)
	}
	for _, r := range done {
		log.Info("published the next signing key: it signs after the overlap, the one it replaces stays published until its tokens expire",
			"kid", r.Next.ID, "alg", r.Next.Algorithm, "replaces", r.Replaces.ID, "signs_from", r.Next.ActivateAfter.Time)
		ev := &storage.Event{Type: "key.rotated", Actor: rotationActor, Detail: storage.Attributes{"kid": r.Next.ID,
			"alg": r.Next.Algorithm, "pinned": !r.Next.Default, "signs_from": r.Next.ActivateAfter.Time,
			"replaces": r.Replaces.ID, "period": days(period)}}
		if err := db.RecordEvent(ctx, ev); err != nil {
			log.Error("audit event not recorded", "type", ev.Type, "err", err)
		}
	}
}

// rotationActor is the audit trail's name for the automatic rotation.
const rotationActor = "system:rotation"

// expireEvents deletes audit events older than retention (0: keep them
// all), a batch at a time, like the sweep and within the same budget. The
// cut is the store's clock, so tests step it.
func expireEvents(ctx context.Context, db *storage.DB, retention time.Duration, deadline time.Time, log *slog.Logger) {
	if retention <= 0 {
		return
	}
	cut := db.Now().Add(-retention)
	var total int64
	for time.Now().Before(deadline) {
		n, err := db.DeleteEventsBefore(ctx, cut, cleanupBatch)
		if err != nil {
			log.Error("delete old audit events", "err", err)
			return
		}
		if total += n; n < cleanupBatch {
			break
		}
	}
	if total > 0 {
		log.Info("deleted old audit events", "events", total, "retention", retention)
	}
}

// runMaintenance runs pass every interval until ctx ends.
func runMaintenance(ctx context.Context, pass func(context.Context), interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pass(ctx)
		}
	}
}
