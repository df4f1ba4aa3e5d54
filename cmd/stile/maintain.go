package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage"
)

// Background maintenance: every minute each instance lets a due next
// signing key start signing, and deletes rows nobody can use any more —
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

func maintenance(db *storage.DB, signing *keys.Manager, sessionIdle time.Duration, log *slog.Logger) func(context.Context) {
	retention := storage.Retention{SessionIdle: sessionIdle, FailureMemory: 24 * time.Hour, AuthRequestAge: time.Hour}
	return func(ctx context.Context) {
		if promoted, err := signing.Promote(ctx); err != nil {
			log.Error("promote signing key", "err", err)
		} else if promoted {
			log.Info("a new signing key now signs; the old one stays published until its tokens expire")
		}
		deleted, done, err := db.Sweep(ctx, retention, cleanupBatch, time.Now().Add(cleanupBudget))
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
