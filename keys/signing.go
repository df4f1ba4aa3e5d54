package keys

import (
	"context"
	"crypto"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/stile-id/stile/storage"
)

// Signer is a key that signs tokens now.
type Signer struct {
	ID        string // the JWS kid
	Algorithm jose.SignatureAlgorithm
	Key       crypto.Signer
}

// PublicKey is a key published in the JWKS.
type PublicKey struct {
	ID        string
	Algorithm jose.SignatureAlgorithm
	Key       crypto.PublicKey
}

// Manager keeps the signing keys: it creates the first ones, unseals the
// active ones (one per algorithm: the default's, and one for each algorithm
// a client pins), and lists the ones to publish. It keeps them parsed, so a
// token costs neither a database read nor an unseal: it reloads when the
// store's cache generation moves (any change to the keys, on any instance:
// storage/cache.go) and at least every cacheFor, so a next key whose time
// has come is promoted.
type Manager struct {
	db       *storage.DB
	sealer   *Sealer
	now      func() time.Time
	cacheFor time.Duration
	lifetime time.Duration // the server's longest default token lifetime

	mu       sync.Mutex
	signers  map[string]*Signer // active keys by algorithm
	dflt     *Signer
	algs     []string // the algorithms of the active keys: the default's first
	public   []PublicKey
	jwks     []byte // public as a JWKS document, marshalled once per load
	loadedAt time.Time
	gen      uint64 // the store's cache generation when loaded
}

// NewManager returns a Manager over the store's signing_keys table.
// lifetime is the longest token lifetime the server issues by default; a
// retired key stays published at least that long (or a client's longer
// override).
func NewManager(db *storage.DB, sealer *Sealer, now func() time.Time, lifetime time.Duration) *Manager {
	return &Manager{db: db, sealer: sealer, now: now, cacheFor: time.Minute, lifetime: lifetime}
}

// ErrNextExists means a rotation is already under way.
var ErrNextExists = errors.New("a next key is already published and waiting to sign")

// Rotate publishes a new key of alg ("" : the default's algorithm) that
// starts signing after activateAfter, as the default. Until then verifiers
// can fetch it from the JWKS; once it signs, the key of its algorithm and
// the previous default (unless a client pins its algorithm) stay published
// until every token they signed has expired.
func (m *Manager) Rotate(ctx context.Context, alg string, activateAfter time.Duration) (*storage.SigningKey, error) {
	return m.rotate(ctx, alg, activateAfter, true)
}

// ErrNotPinned means a pinned rotation named an algorithm no client pins
// or the default's own.
var ErrNotPinned = errors.New("not the algorithm of a pinned key")

// RotatePinned publishes a new key of alg for the clients that pin it,
// leaving the default as it is: it replaces their key after activateAfter.
// alg must have an active key that is not the default.
func (m *Manager) RotatePinned(ctx context.Context, alg string, activateAfter time.Duration) (*storage.SigningKey, error) {
	if _, err := ParseAlgorithm(alg); err != nil {
		return nil, err
	}
	stored, err := m.db.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(stored, func(k storage.SigningKey) bool {
		return k.State == storage.KeyActive && k.Algorithm == alg && !k.Default
	}) {
		return nil, fmt.Errorf("%w: no client-pinned %s key signs (rotate the default without --pinned)", ErrNotPinned, alg)
	}
	return m.rotate(ctx, alg, activateAfter, false)
}

func (m *Manager) rotate(ctx context.Context, alg string, activateAfter time.Duration, asDefault bool) (*storage.SigningKey, error) {
	if alg == "" {
		cur, err := m.db.ActiveSigningKey(ctx)
		if err != nil {
			return nil, err
		}
		alg = cur.Algorithm
	}
	if _, err := ParseAlgorithm(alg); err != nil {
		return nil, err
	}
	stored, err := m.db.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range stored {
		if k.State == storage.KeyNext && k.Algorithm == alg {
			return nil, fmt.Errorf("%w: %s (%s) signs from %s", ErrNextExists, k.ID, k.Algorithm,
				k.ActivateAfter.Time.Format(time.RFC3339))
		}
	}
	k, err := m.generate(alg, storage.KeyNext, asDefault)
	if err != nil {
		return nil, err
	}
	k.ActivateAfter = sql.NullTime{Time: m.now().Add(activateAfter), Valid: true}
	if err := m.db.CreateSigningKey(ctx, k); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, fmt.Errorf("%w: %s", ErrNextExists, alg)
		}
		return nil, err
	}
	m.invalidate()
	return k, nil
}

// Promote lets a next key whose time has come sign, retiring the one it
// replaces, and retires the keys of an algorithm no client pins any more
// (the last pin removed). The server calls it periodically; it is cheap
// when nothing is due.
func (m *Manager) Promote(ctx context.Context) (bool, error) {
	publishFor, err := m.retiredFor(ctx)
	if err != nil {
		return false, err
	}
	ok, err := m.db.PromoteDueKey(ctx, publishFor)
	if err != nil {
		return false, err
	}
	retired, err := m.db.RetireUnpinned(ctx, publishFor)
	if ok || retired > 0 {
		m.invalidate()
	}
	return ok, err
}

// retiredFor is how long a retired key must stay published: the longest
// lifetime of any token it may have signed, plus a margin for clock skew.
func (m *Manager) retiredFor(ctx context.Context) (time.Duration, error) {
	longest := m.lifetime
	clients, err := m.db.ListClients(ctx)
	if err != nil {
		return 0, err
	}
	for _, c := range clients {
		longest = max(longest, time.Duration(c.AccessTokenLifetime), time.Duration(c.IDTokenLifetime))
	}
	return longest + 5*time.Minute, nil
}

func (m *Manager) invalidate() {
	m.mu.Lock()
	m.signers, m.dflt = nil, nil
	m.mu.Unlock()
}

// Active returns the default key: the one that signs for clients that pin
// no algorithm.
func (m *Manager) Active(ctx context.Context) (*Signer, error) {
	if err := m.load(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dflt, nil
}

// For returns the key that signs for a client pinned to alg; "" is the
// default. A pinned algorithm without an active key (a client pinned since
// the cache was filled) gets one, at once: that client has never been sent
// a token of it, so nobody can hold a stale key set for it.
func (m *Manager) For(ctx context.Context, alg string) (*Signer, error) {
	if alg == "" {
		return m.Active(ctx)
	}
	if err := m.load(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	s := m.signers[alg]
	m.mu.Unlock()
	if s != nil {
		return s, nil
	}
	if err := m.EnsurePinned(ctx, alg); err != nil {
		return nil, err
	}
	m.invalidate()
	if err := m.load(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s = m.signers[alg]; s == nil {
		return nil, fmt.Errorf("no active %s signing key", alg)
	}
	return s, nil
}

// Algorithms returns the algorithms stile signs with now, the default's
// first: what discovery advertises.
func (m *Manager) Algorithms(ctx context.Context) ([]string, error) {
	if err := m.load(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.algs, nil
}

// Published returns the keys a verifier must know: the next, the active
// and the retired ones still published.
func (m *Manager) Published(ctx context.Context) ([]PublicKey, error) {
	if err := m.load(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.public, nil
}

// load refreshes the cache when it is older than cacheFor or the keys may
// have changed.
func (m *Manager) load(ctx context.Context) error {
	gen := m.db.Generation(ctx)
	m.mu.Lock()
	fresh := m.dflt != nil && m.now().Sub(m.loadedAt) < m.cacheFor && gen == m.gen
	m.mu.Unlock()
	if fresh {
		return nil
	}
	if _, err := m.Promote(ctx); err != nil {
		return err
	}
	stored, err := m.db.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	signers := map[string]*Signer{}
	var dflt *Signer
	var public []PublicKey
	now := m.now()
	for _, k := range stored {
		if !k.Published(now) {
			continue
		}
		var jwk jose.JSONWebKey
		if err := json.Unmarshal([]byte(k.PublicJWK), &jwk); err != nil {
			return fmt.Errorf("signing key %s: public JWK: %w", k.ID, err)
		}
		public = append(public, PublicKey{ID: k.ID, Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: jwk.Key})
		if k.State != storage.KeyActive {
			continue
		}
		s, err := m.unseal(&k)
		if err != nil {
			return err
		}
		signers[k.Algorithm] = s
		if k.Default {
			dflt = s
		}
	}
	if dflt == nil {
		return errors.New("no active default signing key: start the server once to create one")
	}
	algs := []string{string(dflt.Algorithm)}
	for _, a := range storage.SigningAlgorithms {
		if signers[a] != nil && a != algs[0] {
			algs = append(algs, a)
		}
	}
	jwks, err := marshalJWKS(public)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.signers, m.dflt, m.algs, m.public, m.jwks, m.loadedAt, m.gen = signers, dflt, algs, public, jwks, m.now(), gen
	m.mu.Unlock()
	return nil
}

// JWKS returns the published keys as a JWKS document (RFC 7517), each with
// kid, alg and use.
func (m *Manager) JWKS(ctx context.Context) ([]byte, error) {
	if err := m.load(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.jwks, nil
}

func marshalJWKS(public []PublicKey) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(public))}
	for i, k := range public {
		set.Keys[i] = jose.JSONWebKey{KeyID: k.ID, Algorithm: string(k.Algorithm), Use: "sig", Key: k.Key}
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("marshal JWKS: %w", err)
	}
	return b, nil
}

// hasKey reports whether a key of alg in one of the states exists.
func hasKey(stored []storage.SigningKey, alg string, states ...string) bool {
	return slices.ContainsFunc(stored, func(k storage.SigningKey) bool {
		return k.Algorithm == alg && slices.Contains(states, k.State)
	})
}
