package storage

import (
	"context"
	"fmt"
	"time"
)

// Retention says how long rows are kept after they stop being usable.
type Retention struct {
	SessionIdle    time.Duration // sessions unused this long are dead
	FailureMemory  time.Duration // failed-attempt counters are forgotten after this
	AuthRequestAge time.Duration // authorization requests are kept this long past their expiry (code reuse detection)
}

// expiry lists, per table, the key column and when a row is garbage. The
// conditions take the same arguments: now, then the cutoffs below.
var expiry = []struct{ table, key, where string }{
	{"auth_requests", "id", "expires_at < :request_cutoff"},
	{"login_transactions", "id", "expires_at < :now"},
	{"sessions", "id", "expires_at < :now OR ended_at IS NOT NULL OR last_seen_at < :idle_cutoff"},
	{"access_tokens", "id", "expires_at < :now"},
	{"refresh_tokens", "id", "expires_at < :now OR family_expires_at < :now OR revoked_at IS NOT NULL"},
	{"enrollment_links", "id", "expires_at < :now OR used_at IS NOT NULL"},
	{"pending_totp", "user_id", "expires_at < :now"},
	{"failed_attempts", "subject", "last_failure_at < :failure_cutoff AND (locked_until IS NULL OR locked_until < :now)"},
	{"signing_keys", "id", "state = 'retired' AND publish_until < :now"},
	{"rate_limits", "key", "window_start < :rate_cutoff"},
}

// DeleteExpired deletes rows that can no longer be used, at most limit per
// table, and returns how many it deleted per table. The server calls it
// periodically; bounding each pass keeps the locks short.
func (d *DB) DeleteExpired(ctx context.Context, r Retention, limit int) (map[string]int64, error) {
	now := d.Now()
	args := map[string]any{
		"now":            now,
		"request_cutoff": now.Add(-r.AuthRequestAge),
		"idle_cutoff":    now.Add(-r.SessionIdle),
		"failure_cutoff": now.Add(-r.FailureMemory),
		"rate_cutoff":    now.Add(-RateWindowMax),
		"limit":          limit,
	}
	out := map[string]int64{}
	for _, e := range expiry {
		q := fmt.Sprintf(`DELETE FROM %s WHERE %s IN (SELECT %s FROM %s WHERE %s LIMIT :limit)`, e.table, e.key, e.key, e.table, e.where)
		res, err := d.db.NamedExecContext(ctx, q, args)
		if err != nil {
			return out, fmt.Errorf("delete expired %s: %w", e.table, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			out[e.table] = n
		}
	}
	return out, nil
}
