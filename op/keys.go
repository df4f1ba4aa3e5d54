package op

import (
	"context"
	"errors"
	"net/http"
	"sync"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stile-id/stile/keys"
)

// signingKey adapts keys.Signer to op.SigningKey.
type signingKey struct{ s *keys.Signer }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.s.Algorithm }
func (k signingKey) Key() any                                    { return k.s.Key }
func (k signingKey) ID() string                                  { return k.s.ID }

// publicKey adapts keys.PublicKey to op.Key.
type publicKey struct{ k keys.PublicKey }

func (k publicKey) ID() string                         { return k.k.ID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return k.k.Algorithm }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.k.Key }

// The library asks for the signing key with nothing but the context
// (op.Storage.SigningKey), so a client's pinned algorithm travels there: a
// request that may sign carries a pin slot, and every load of a client in
// that request records the client's id_token_signed_response_alg in it. The
// library always loads the client before it signs (it authenticates it), so
// SigningKey sees the pin of the client the tokens are for.
type pinSlot struct {
	mu       sync.Mutex
	clientID string
	alg      string
	mixed    bool // two different clients were loaded: refuse to guess
}

type pinKey struct{}

// withPinSlot gives a request a pin slot.
func withPinSlot(ctx context.Context) context.Context {
	return context.WithValue(ctx, pinKey{}, &pinSlot{})
}

// withSigningPins gives every request through h a pin slot.
func withSigningPins(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(withPinSlot(r.Context())))
	})
}

// recordPin notes the client loaded in this request, if it has a slot.
func recordPin(ctx context.Context, clientID, alg string) {
	p, _ := ctx.Value(pinKey{}).(*pinSlot)
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clientID != "" && p.clientID != clientID {
		p.mixed = true
	}
	p.clientID, p.alg = clientID, alg
}

var errMixedPins = errors.New("two clients loaded in one signing request")

func pinnedAlg(ctx context.Context) (string, error) {
	p, _ := ctx.Value(pinKey{}).(*pinSlot)
	if p == nil {
		return "", nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mixed {
		return "", errMixedPins
	}
	return p.alg, nil
}

// SigningKey implements op.Storage: the key of the algorithm the client
// pins, or the default key.
func (s *Storage) SigningKey(ctx context.Context) (zop.SigningKey, error) {
	alg, err := pinnedAlg(ctx)
	if err != nil {
		return nil, s.serverError(ctx, "signing key", err)
	}
	k, err := s.keys.For(ctx, alg)
	if err != nil {
		return nil, s.serverError(ctx, "signing key", err)
	}
	return signingKey{k}, nil
}

// SignatureAlgorithms implements op.Storage: the algorithms of the active
// keys.
func (s *Storage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	algs, err := s.keys.Algorithms(ctx)
	if err != nil {
		return nil, s.serverError(ctx, "signature algorithms", err)
	}
	out := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out, nil
}

// KeySet implements op.Storage: the JWKS, and every key the provider
// checks its own tokens against.
func (s *Storage) KeySet(ctx context.Context) ([]zop.Key, error) {
	pub, err := s.keys.Published(ctx)
	if err != nil {
		return nil, s.serverError(ctx, "key set", err)
	}
	out := make([]zop.Key, len(pub))
	for i, k := range pub {
		out[i] = publicKey{k}
	}
	return out, nil
}

// serveKeys answers /keys with the JWKS document keys.Manager marshalled
// when it loaded the key set, instead of the library's marshalling on every
// request.
func (p *Provider) serveKeys(w http.ResponseWriter, r *http.Request) {
	body, err := p.storage.keys.JWKS(r.Context())
	if err != nil {
		p.log.ErrorContext(r.Context(), "key set", "err", err)
		httphelper.MarshalJSONWithStatus(w, oidc.ErrServerError().WithDescription("internal error"), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}
