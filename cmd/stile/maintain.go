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
// codes, logins, sessions, tokens, links, counters, retired keys — at most
// cleanupBatch per table per pass, so no pass holds locks for long. Several
// instances doing it at once is harmless.
const (
	maintainEvery = time.Minute
	cleanupBatch  = 1000
)

func maintenance(db *storage.DB, signing *keys.Manager, sessionIdle time.Duration, log *slog.Logger) func(context.Context) {
	retention := storage.Retention{SessionIdle: sessionIdle, FailureMemory: 24 * time.Hour, AuthRequestAge: time.Hour}
	return func(ctx context.Context) {
		if promoted, err := signing.Promote(ctx); err != nil {
			log.Error("promote signing key", "err", err)
		} else if promoted {
			log.Info("a new signing key now signs; the old one stays published until its tokens expire")
		}
		deleted, err := db.DeleteExpired(ctx, retention, cleanupBatch)
		if err != nil {
			log.Error("delete expired rows", "err", err)
		}
		if len(deleted) > 0 {
			log.Info("deleted expired rows", "tables", deleted)
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
