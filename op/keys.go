package op

import (
	"context"

	"github.com/go-jose/go-jose/v4"
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

// SigningKey implements op.Storage.
func (s *Storage) SigningKey(ctx context.Context) (zop.SigningKey, error) {
	k, err := s.keys.Active(ctx)
	if err != nil {
		return nil, s.serverError(ctx, "signing key", err)
	}
	return signingKey{k}, nil
}

// SignatureAlgorithms implements op.Storage.
func (s *Storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
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
