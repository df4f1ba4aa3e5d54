package storage

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The client cache. Every token request reads its client several times
// (the library asks for it at each step), and clients change only when an
// operator changes them, so a serving instance keeps them in memory. What
// makes a change reach every instance within one second:
//
//   - a write through this process's store (any *DB on the same database,
//     a CLI command run in-process included) drops every cache of that
//     database in the process at once;
//   - on PostgreSQL a trigger (migration 0009) notifies the channel
//     stile_cache, and each instance listens (notify.go): another
//     instance's change arrives in milliseconds. After the listener
//     reconnects everything is dropped, as notifications may have been
//     missed;
//   - every change also bumps cache_version (the same triggers, on both
//     databases), and a cache that has not checked it for Revalidate
//     (default 500 ms) reads it before it answers from memory. That covers
//     the writers nothing tells: another process on SQLite (`stile client
//     update` beside `stile serve`), or PostgreSQL while the listener is
//     down. Half a second keeps the bound of one second with room for the
//     check itself, and costs at most two single-row reads a second,
//     none while the instance is idle.
//
// Signing keys are cached by keys.Manager; it asks Generation, which moves
// whenever this cache is dropped, to know when its copy is stale too.
// Users are never cached across requests: disabling one must hold at once.

// DefaultRevalidate is how long a cache answers without checking
// cache_version.
const DefaultRevalidate = 500 * time.Millisecond

// CacheOptions configure StartCache.
type CacheOptions struct {
	// ListenURL is the PostgreSQL URL the listener connects with; empty:
	// no listener (SQLite, or polling only).
	ListenURL string
	// Revalidate is how long the cache answers without checking
	// cache_version; zero: DefaultRevalidate.
	Revalidate time.Duration
	// Clock measures Revalidate; nil: the wall clock. It is not the store's
	// clock: tests step that one to expire tokens, which says nothing about
	// how fresh this copy is.
	Clock func() time.Time
	Log   *slog.Logger
	// Isolated keeps the cache out of the process's registry: writes
	// through other stores of the process reach it only as another
	// process's would. For tests that play two processes in one.
	Isolated bool
}

// cache is DB's in-memory copy of the clients. Its zero value is off: a
// store caches only once StartCache turned it on (a serving instance, not a
// one-shot CLI command).
type cache struct {
	mu       sync.Mutex
	on       bool
	gen      uint64 // moves on every drop; a read that started before one does not fill the cache
	clients  map[string]*Client
	apiKeys  map[string]string // direct-mode API key ID → client ID
	version  int64             // cache_version when last read
	checked  time.Time         // when it was last read
	every    time.Duration
	clock    func() time.Time
	checking sync.Mutex // one version read at a time
	stop     func()
	log      *slog.Logger

	readHook atomic.Pointer[func(table string)]
	listener listenerState
	idOnce   sync.Once
	id       string // see identity
}

// StartCache turns the client cache on, and on PostgreSQL with a
// ListenURL starts listening for changes. Close stops it.
func (d *DB) StartCache(ctx context.Context, o CacheOptions) error {
	c := &d.cache
	c.mu.Lock()
	started := c.on
	c.mu.Unlock()
	if started { // one listener per store, whoever else starts it
		return nil
	}
	if o.Revalidate <= 0 {
		o.Revalidate = DefaultRevalidate
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	v, err := d.cacheVersion(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.on, c.every, c.clock, c.log = true, o.Revalidate, o.Clock, o.Log
	c.version, c.checked = v, o.Clock()
	c.dropLocked()
	c.mu.Unlock()
	if !o.Isolated {
		register(d)
	}
	if d.dialect == Postgres && o.ListenURL != "" {
		stop, err := c.listen(ctx, o.ListenURL)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.stop = stop
		c.mu.Unlock()
	}
	return nil
}

// stopCache ends the listener and leaves the process's registry.
func (d *DB) stopCache() {
	unregister(d)
	d.cache.mu.Lock()
	stop := d.cache.stop
	d.cache.stop, d.cache.on = nil, false
	d.cache.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Generation is a number that moves whenever the cached clients and keys
// may be stale. A caller that keeps its own copy (keys.Manager) reloads
// when it moved; calling it also revalidates.
func (d *DB) Generation(ctx context.Context) uint64 {
	d.revalidate(ctx)
	d.cache.mu.Lock()
	defer d.cache.mu.Unlock()
	return d.cache.gen
}

// SetReadHook calls fn with the table's name whenever a client or a user
// is read from the database rather than from memory. For tests that count
// reads per request; nil removes it.
func (d *DB) SetReadHook(fn func(table string)) {
	if fn == nil {
		d.cache.readHook.Store(nil)
		return
	}
	d.cache.readHook.Store(&fn)
}

func (d *DB) countRead(table string) {
	if fn := d.cache.readHook.Load(); fn != nil {
		(*fn)(table)
	}
}

func (c *cache) dropLocked() {
	c.gen++
	c.clients, c.apiKeys = map[string]*Client{}, map[string]string{}
}

// drop forgets everything.
func (c *cache) drop() {
	c.mu.Lock()
	c.dropLocked()
	c.mu.Unlock()
}

// revalidate reads cache_version when the last read is older than the
// bound, and drops the cache if it moved (or cannot be read).
func (d *DB) revalidate(ctx context.Context) {
	c := &d.cache
	due := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.on && c.clock().Sub(c.checked) >= c.every
	}
	if !due() {
		return
	}
	c.checking.Lock()
	defer c.checking.Unlock()
	if !due() { // another request just checked
		return
	}
	at := c.clock()
	v, err := d.cacheVersion(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.log.WarnContext(ctx, "cache: cannot read cache_version: dropping the cache", "err", err)
		c.dropLocked()
		return
	}
	if v != c.version {
		c.dropLocked()
	}
	c.version, c.checked = v, at
}

func (d *DB) cacheVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := d.get(ctx, d.r, &v, `SELECT version FROM cache_version WHERE id = 1`); err != nil {
		return 0, fmt.Errorf("read cache version: %w", err)
	}
	return v, nil
}

// cachedClient returns a copy of the cached client, and the generation a
// miss must pass to keepClient.
func (d *DB) cachedClient(ctx context.Context, id string) (*Client, uint64, bool) {
	d.revalidate(ctx)
	c := &d.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return nil, 0, false
	}
	if cl, ok := c.clients[id]; ok {
		return cl.clone(), c.gen, true
	}
	return nil, c.gen, false
}

// cachedAPIKey is cachedClient by direct-mode API key ID.
func (d *DB) cachedAPIKey(ctx context.Context, keyID string) (*Client, uint64, bool) {
	d.revalidate(ctx)
	c := &d.cache
	c.mu.Lock()
	id, ok := c.apiKeys[keyID]
	c.mu.Unlock()
	if !ok {
		return nil, c.generation(), false
	}
	return d.cachedClient(ctx, id)
}

func (c *cache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// keepClient caches a client read from the database, unless the cache was
// dropped since the read began: the row may predate that change. Only
// clients that exist are kept, so unknown IDs cannot fill memory.
func (d *DB) keepClient(gen uint64, cl *Client) {
	c := &d.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on || c.gen != gen {
		return
	}
	c.clients[cl.ID] = cl.clone()
	if cl.APIKeyID.Valid {
		c.apiKeys[cl.APIKeyID.String] = cl.ID
	}
}

// cachedTablesChanged is called after every write to clients or signing_keys
// through this store: every cache of this database in the process drops.
// This store's own cache also takes the version its write left, read after
// the commit: an empty cache at that version holds nothing older, and its
// next check does not drop it again for its own write.
func (d *DB) cachedTablesChanged(ctx context.Context) {
	c := &d.cache
	c.mu.Lock()
	on := c.on
	c.mu.Unlock()
	if on {
		v, err := d.cacheVersion(context.WithoutCancel(ctx))
		c.mu.Lock()
		c.dropLocked()
		if err == nil {
			c.version, c.checked = v, c.clock()
		}
		c.mu.Unlock()
	} else {
		c.drop() // Generation still moves, for keys.Manager
	}
	for _, o := range registered(d) {
		o.cache.drop()
	}
}

// clone copies a client deeply enough that no caller can change the
// cached one.
func (c *Client) clone() *Client {
	out := *c
	for _, p := range []*Strings{&out.GrantTypes, &out.RedirectURIs, &out.PostLogoutRedirectURIs, &out.WebOrigins,
		&out.Audiences, &out.AllowedScopes} {
		*p = slices.Clone(*p)
	}
	out.SecretHash = slices.Clone(c.SecretHash)
	out.APIKeyMAC = slices.Clone(c.APIKeyMAC)
	return &out
}

// The process's caching stores, by the database they cache: a write
// through any store of the process reaches the caches of the others at
// once (an in-process CLI command beside a server, two instances in one
// test binary).
var caches struct {
	mu sync.Mutex
	m  map[string][]*DB
}

// identity names the database: the SQLite file's absolute path, or the
// PostgreSQL server's address and database name.
func (d *DB) identity() string {
	d.cache.idOnce.Do(func() {
		if d.dialect == SQLite {
			p, err := filepath.Abs(d.path)
			if err != nil {
				p = d.path
			}
			d.cache.id = "sqlite:" + p
			return
		}
		var id string
		const q = `SELECT current_database() || '@' || COALESCE(host(inet_server_addr()), 'local') || ':' ||
			COALESCE(inet_server_port()::text, '')`
		if err := d.r.Get(&id, q); err != nil {
			id = fmt.Sprintf("postgres:%p", d) // unknown: this store alone
		}
		d.cache.id = "postgres:" + id
	})
	return d.cache.id
}

func register(d *DB) {
	id := d.identity()
	caches.mu.Lock()
	defer caches.mu.Unlock()
	if caches.m == nil {
		caches.m = map[string][]*DB{}
	}
	if !slices.Contains(caches.m[id], d) {
		caches.m[id] = append(caches.m[id], d)
	}
}

func unregister(d *DB) {
	caches.mu.Lock()
	defer caches.mu.Unlock()
	for id, list := range caches.m {
		caches.m[id] = slices.DeleteFunc(list, func(o *DB) bool { return o == d })
	}
}

// registered returns the other caching stores of d's database.
func registered(d *DB) []*DB {
	id := d.identity()
	caches.mu.Lock()
	defer caches.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(caches.m[id]), func(o *DB) bool { return o == d })
}
