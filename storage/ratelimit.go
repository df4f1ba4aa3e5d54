package storage

import (
	"context"
	"fmt"
	"time"
)

// Rate is a limit of Limit hits per window of Per. A zero Limit means no limit.
type Rate struct {
	Limit int
	Per   time.Duration
}

// RateWindowMax is the longest window a Rate may have: counters older than
// it are garbage (see DeleteExpired).
const RateWindowMax = 24 * time.Hour

// Hit counts one hit against key in its current fixed window and reports
// whether the hit is within r, and if not, how long until the window ends.
// Counting and checking are one statement, so concurrent hits on every
// instance are counted exactly: of N at once, at most r.Limit are allowed.
func (d *DB) Hit(ctx context.Context, key string, r Rate) (bool, time.Duration, error) {
	if r.Limit <= 0 {
		return true, 0, nil
	}
	now := d.Now()
	var out struct {
		Hits        int       `db:"hits"`
		WindowStart time.Time `db:"window_start"`
	}
	// SET reads the row as it was, in both dialects: a window that ended
	// starts over at now with one hit.
	const q = `INSERT INTO rate_limits (key, window_start, hits) VALUES (?, ?, 1)
		ON CONFLICT (key) DO UPDATE SET
			hits = CASE WHEN rate_limits.window_start <= ? THEN 1 ELSE rate_limits.hits + 1 END,
			window_start = CASE WHEN rate_limits.window_start <= ? THEN excluded.window_start ELSE rate_limits.window_start END
		RETURNING hits, window_start`
	ended := now.Add(-r.Per)
	if err := d.get(ctx, d.w, &out, q, key, now, ended, ended); err != nil {
		return false, 0, fmt.Errorf("count hit %s: %w", key, err)
	}
	if out.Hits <= r.Limit {
		return true, 0, nil
	}
	return false, max(out.WindowStart.Add(r.Per).Sub(now), time.Second), nil
}
