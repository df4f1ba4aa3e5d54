package storage

import (
	"context"
	"fmt"
	"time"
)

// RetireUnpinned retires the active keys that sign only for pinned
// clients (not the default) once no client pins their algorithm any more,
// and the next keys waiting to replace them. Retired keys stay published
// until now+publishFor, so every token they signed can still be verified.
// It returns how many keys it retired. A client pinned again later gets a
// new key at once (keys.Manager.For).
func (d *DB) RetireUnpinned(ctx context.Context, publishFor time.Duration) (int64, error) {
	const unpinned = `state IN ('active', 'next') AND is_default = FALSE
		AND algorithm NOT IN (SELECT id_token_signed_response_alg FROM clients)`
	// Every instance calls this on each key reload; looking on the read pool
	// first keeps SQLite's write lock for the rare time a key is retired.
	var due int
	if err := d.get(ctx, d.r, &due, `SELECT COUNT(*) FROM signing_keys WHERE `+unpinned); err != nil || due == 0 {
		if err != nil {
			err = fmt.Errorf("look for unpinned signing keys: %w", err)
		}
		return 0, err
	}
	now := d.Now()
	n, err := d.exec(ctx, d.w, `UPDATE signing_keys SET state = 'retired', retired_at = ?, publish_until = ?
		WHERE `+unpinned, now, now.Add(publishFor))
	if err != nil {
		return 0, fmt.Errorf("retire unpinned signing keys: %w", err)
	}
	if n > 0 {
		d.cachedTablesChanged(ctx)
	}
	return n, nil
}
