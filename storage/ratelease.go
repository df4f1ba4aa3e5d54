package storage

import (
	"context"
	"fmt"
	"time"
)

// HitN is Hit for n hits at once: an instance that takes a lease of hits
// spends them in memory (op's token limit) and comes back when they are
// gone, so a busy address costs one statement per n requests and every
// instance still draws on the one counter. It returns how many of the n
// are within r (0 to n) and when the counter's window ends.
func (d *DB) HitN(ctx context.Context, key string, r Rate, n int) (int, time.Time, error) {
	now := d.Now()
	if r.Limit <= 0 {
		return n, now.Add(r.Per), nil
	}
	var out struct {
		Hits        int       `db:"hits"`
		WindowStart time.Time `db:"window_start"`
	}
	const q = `INSERT INTO rate_limits (key, window_start, hits) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET
			hits = CASE WHEN rate_limits.window_start <= ? THEN excluded.hits ELSE rate_limits.hits + excluded.hits END,
			window_start = CASE WHEN rate_limits.window_start <= ? THEN excluded.window_start ELSE rate_limits.window_start END
		RETURNING hits, window_start`
	ended := now.Add(-r.Per)
	if err := d.get(ctx, d.w, &out, q, key, now, n, ended, ended); err != nil {
		return 0, time.Time{}, fmt.Errorf("count %d hits %s: %w", n, key, err)
	}
	granted := min(max(r.Limit-(out.Hits-n), 0), n)
	return granted, out.WindowStart.Add(r.Per), nil
}
