package keys

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/stile-id/stile/storage"
)

// Signer is the key that signs tokens now.
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

// Manager keeps the signing keys: it creates the first one, unseals the
// active one, and lists the ones to publish. It caches them briefly so a
// token does not cost a database read and an RSA key parse; every instance
// picks up a change within cacheFor.
type Manager struct {
	db       *storage.DB
	sealer   *Sealer
	now      func() time.Time
	cacheFor time.Duration
	lifetime time.Duration // the server's longest default token lifetime

	mu       sync.Mutex
	signer   *Signer
	public   []PublicKey
	loadedAt time.Time
}

const rsaBits = 2048

// NewManager returns a Manager over the store's signing_keys table.
// lifetime is the longest token lifetime the server issues by default; a
// retired key stays published at least that long (or a client's longer
// override).
func NewManager(db *storage.DB, sealer *Sealer, now func() time.Time, lifetime time.Duration) *Manager {
	return &Manager{db: db, sealer: sealer, now: now, cacheFor: time.Minute, lifetime: lifetime}
}

// ErrNextExists means a rotation is already under way.
var ErrNextExists = errors.New("a next key is already published and waiting to sign")

// Rotate publishes a new key that starts signing after activateAfter. Until
// then verifiers can fetch it from the JWKS; once it signs, the key it
// replaces stays published until every token it signed has expired.
func (m *Manager) Rotate(ctx context.Context, activateAfter time.Duration) (*storage.SigningKey, error) {
	stored, err := m.db.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range stored {
		if k.State == storage.KeyNext {
			return nil, fmt.Errorf("%w: %s signs from %s", ErrNextExists, k.ID, k.ActivateAfter.Time.Format(time.RFC3339))
		}
	}
	k, err := m.generate(storage.KeyNext)
	if err != nil {
		return nil, err
	}
	k.ActivateAfter = sql.NullTime{Time: m.now().Add(activateAfter), Valid: true}
	if err := m.db.CreateSigningKey(ctx, k); err != nil {
		return nil, err
	}
	m.invalidate()
	return k, nil
}

// Promote lets a next key whose time has come sign, retiring the current
// one. The server calls it periodically; it is cheap when nothing is due.
func (m *Manager) Promote(ctx context.Context) (bool, error) {
	publishFor, err := m.retiredFor(ctx)
	if err != nil {
		return false, err
	}
	ok, err := m.db.PromoteDueKey(ctx, publishFor)
	if ok {
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
	m.signer = nil
	m.mu.Unlock()
}

// Ensure creates an active RS256 key if there is none. When two instances
// start together both may generate one, but the schema lets exactly one be
// active: the loser's insert fails and it uses the winner's.
func (m *Manager) Ensure(ctx context.Context) error {
	_, err := m.db.ActiveSigningKey(ctx)
	if err == nil {
		return nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	k, err := m.generate(storage.KeyActive)
	if err != nil {
		return err
	}
	if err := m.db.CreateSigningKey(ctx, k); err != nil && !errors.Is(err, storage.ErrConflict) {
		return err
	}
	_, err = m.db.ActiveSigningKey(ctx)
	return err
}

func (m *Manager) generate(state string) (*storage.SigningKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, fmt.Errorf("generate RSA key: %w", err)
	}
	kid := uuid.NewString()
	pub, err := json.Marshal(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"})
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	sealed, err := m.sealer.Seal(der, storage.SigningKeyAAD(kid))
	if err != nil {
		return nil, err
	}
	return &storage.SigningKey{ID: kid, Algorithm: string(jose.RS256), PrivateSealed: sealed, PublicJWK: string(pub), State: state}, nil
}

// Active returns the key that signs now.
func (m *Manager) Active(ctx context.Context) (*Signer, error) {
	if err := m.load(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.signer, nil
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

// load refreshes the cache when it is older than cacheFor.
func (m *Manager) load(ctx context.Context) error {
	m.mu.Lock()
	fresh := m.signer != nil && m.now().Sub(m.loadedAt) < m.cacheFor
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
	var signer *Signer
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
		if k.State == storage.KeyActive {
			if signer, err = m.unseal(&k); err != nil {
				return err
			}
		}
	}
	if signer == nil {
		return errors.New("no active signing key: start the server once to create one")
	}
	m.mu.Lock()
	m.signer, m.public, m.loadedAt = signer, public, m.now()
	m.mu.Unlock()
	return nil
}

func (m *Manager) unseal(k *storage.SigningKey) (*Signer, error) {
	der, err := m.sealer.Open(k.PrivateSealed, storage.SigningKeyAAD(k.ID))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing key %s: %T cannot sign", k.ID, priv)
	}
	return &Signer{ID: k.ID, Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: s}, nil
}
