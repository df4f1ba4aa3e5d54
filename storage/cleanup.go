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
	AuthRequestAge time.Duration // requests that issued a code are kept this long past their expiry (code reuse detection)
}

// expiry lists, per table, the key column and when a row is garbage. The
// conditions take the same arguments: now, then the cutoffs below. An
// authorization request that never got a code (most of an anonymous flood)
// goes at its expiry; one with a code stays AuthRequestAge longer, so a
// replay of the code is still recognised and revokes what it issued.
var expiry = []struct{ table, key, where string }{
	{"auth_requests", "id", "expires_at < :now AND (code_hash IS NULL OR expires_at < :request_cutoff)"},
	{"login_transactions", "id", "expires_at < :now"},
	{"signups", "id", "expires_at < :now"},
	{"sessions", "id", "expires_at < :now OR ended_at IS NOT NULL OR last_seen_at < :idle_cutoff"},
	{"access_tokens", "id", "expires_at < :now"},
	{"refresh_tokens", "id", "expires_at < :now OR family_expires_at < :now OR revoked_at IS NOT NULL"},
	{"enrollment_links", "id", "expires_at < :now OR used_at IS NOT NULL"},
	{"password_resets", "id", "expires_at < :now OR used_at IS NOT NULL"},
	{"pending_totp", "user_id", "expires_at < :now"},
	{"account_codes", "user_id", "expires_at < :now"},
	{"failed_attempts", "subject", "last_failure_at < :failure_cutoff AND (locked_until IS NULL OR locked_until < :now)"},
	{"signing_keys", "id", "state = 'retired' AND publish_until < :now"},
	{"rate_limits", "key", "window_start < :rate_cutoff"},
}

// DeleteExpired deletes rows that can no longer be used, at most limit per
// table, and returns how many it deleted per table.
func (d *DB) DeleteExpired(ctx context.Context, r Retention, limit int) (map[string]int64, error) {
	out := map[string]int64{}
	args := d.expiryArgs(r, limit)
	for _, e := range expiry {
		if _, err := d.deleteBatch(ctx, e.table, e.key, e.where, args, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Sweep deletes expired rows in batches of batch per table, round after
// round, until no table has any left or the wall clock passes until, and
// reports whether it finished. Short batches keep each lock short; looping
// makes cleanup keep up with any rate stile admits, where one batch per
// table per pass would fall behind a flood. until is wall-clock time on
// purpose: it bounds the work, whatever the store's clock says.
func (d *DB) Sweep(ctx context.Context, r Retention, batch int, until time.Time) (map[string]int64, bool, error) {
	out := map[string]int64{}
	args := d.expiryArgs(r, batch)
	left := expiry
	for len(left) > 0 {
		var full []struct{ table, key, where string }
		for _, e := range left {
			if time.Now().After(until) {
				return out, false, nil
			}
			n, err := d.deleteBatch(ctx, e.table, e.key, e.where, args, out)
			if err != nil {
				return out, false, err
			}
			if n == int64(batch) {
				full = append(full, e)
			}
		}
		left = full
	}
	return out, true, nil
}

func (d *DB) expiryArgs(r Retention, limit int) map[string]any {
	now := d.Now()
	return map[string]any{
		"now":            now,
		"request_cutoff": now.Add(-r.AuthRequestAge),
		"idle_cutoff":    now.Add(-r.SessionIdle),
		"failure_cutoff": now.Add(-r.FailureMemory),
		"rate_cutoff":    now.Add(-RateWindowMax),
		"limit":          limit,
	}
}

// deleteBatch deletes up to args["limit"] garbage rows of one table and
// adds the count to out.
func (d *DB) deleteBatch(ctx context.Context, table, key, where string, args map[string]any, out map[string]int64) (int64, error) {
	q := fmt.Sprintf(`DELETE FROM %s WHERE %s IN (SELECT %s FROM %s WHERE %s LIMIT :limit)`, table, key, key, table, where)
	unlock, err := d.hold(ctx, d.w)
	if err != nil {
		return 0, fmt.Errorf("delete expired %s: %w", table, err)
	}
	res, err := d.w.NamedExecContext(ctx, q, args)
	unlock()
	if err != nil {
		return 0, fmt.Errorf("delete expired %s: %w", table, err)
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		out[table] += n
	}
	return n, nil
}

// CountRows returns how many rows each table that cleanup sweeps holds,
// for the log when a sweep runs out of time and for tests.
func (d *DB) CountRows(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for _, e := range expiry {
		var n int64
		if err := d.get(ctx, d.r, &n, `SELECT COUNT(*) FROM `+e.table); err != nil {
			return nil, fmt.Errorf("count %s: %w", e.table, err)
		}
		out[e.table] = n
	}
	return out, nil
}
