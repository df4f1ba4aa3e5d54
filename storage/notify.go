package storage

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
)

// CacheChannel is the PostgreSQL channel migration 0009's triggers notify
// with '<table>:<id>' on every change to clients or signing_keys.
const CacheChannel = "stile_cache"

// ListenerName is the application_name of the listener's connection, so an
// operator (or a test) can tell it apart in pg_stat_activity.
const ListenerName = "stile-cache-listener"

// listenerState counts what the listener went through, for tests and logs.
type listenerState struct {
	connected     atomic.Bool
	reconnects    atomic.Int64
	notifications atomic.Int64
}

// listen keeps a connection LISTENing on CacheChannel. Any notification
// drops the whole cache (clients and keys change rarely; dropping one entry
// would save nothing worth the bookkeeping). When the connection is lost
// the cache drops, and again once it is back: notifications sent in between
// are gone. Meanwhile cache_version (cache.go) keeps the bound. It waits
// up to five seconds for the first connection; without one it carries on
// and the listener keeps trying.
func (c *cache) listen(ctx context.Context, rawURL string) (func(), error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("cache listener: %w", err)
	}
	q := u.Query()
	q.Set("application_name", ListenerName)
	u.RawQuery = q.Encode()
	l := pq.NewListener(u.String(), 50*time.Millisecond, 5*time.Second, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventConnected:
			c.listener.connected.Store(true)
		case pq.ListenerEventDisconnected:
			c.listener.connected.Store(false)
			c.drop()
			c.log.Warn("cache listener: connection lost; relying on cache_version until it is back", "err", err)
		case pq.ListenerEventReconnected:
			c.drop()
			c.listener.reconnects.Add(1)
			c.listener.connected.Store(true)
			c.log.Info("cache listener: reconnected; cache dropped")
		case pq.ListenerEventConnectionAttemptFailed:
			c.log.Warn("cache listener: cannot connect", "err", err)
		}
	})
	listening := make(chan error, 1)
	go func() { listening <- l.Listen(CacheChannel) }()
	select {
	case err := <-listening:
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("cache listener: listen %s: %w", CacheChannel, err)
		}
	case <-time.After(5 * time.Second):
		c.log.WarnContext(ctx, "cache listener: not connected yet; polling cache_version meanwhile")
	case <-ctx.Done():
		l.Close()
		return nil, ctx.Err()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := range l.Notify { // nil after a reconnect; closed by Close
			c.drop()
			if n != nil {
				c.listener.notifications.Add(1)
			}
		}
	}()
	return func() {
		l.Close()
		<-done
	}, nil
}

// ListenerStats is what the cache listener went through.
type ListenerStats struct {
	Connected     bool
	Reconnects    int64
	Notifications int64
}

// Listener reports the cache listener's state.
func (d *DB) Listener() ListenerStats {
	l := &d.cache.listener
	return ListenerStats{Connected: l.connected.Load(), Reconnects: l.reconnects.Load(), Notifications: l.notifications.Load()}
}
