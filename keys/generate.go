package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/stile-id/stile/storage"
)

const rsaBits = 2048

// ParseAlgorithm checks an operator's or a client's choice of signing
// algorithm; the error says which ones exist.
func ParseAlgorithm(s string) (string, error) {
	if !slices.Contains(storage.SigningAlgorithms, s) {
		return "", fmt.Errorf("signing algorithm %q: use one of %v", s, storage.SigningAlgorithms)
	}
	return s, nil
}

// newPrivateKey makes a key for alg: RSA-2048 for RS256, P-256 for ES256,
// Ed25519 for EdDSA.
func newPrivateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case storage.AlgRS256:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case storage.AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case storage.AlgEdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	_, err := ParseAlgorithm(alg)
	return nil, err
}

// generate makes a key pair of alg and seals its private half (PKCS #8)
// with AAD bound to its row.
func (m *Manager) generate(alg, state string, isDefault bool) (*storage.SigningKey, error) {
	priv, err := newPrivateKey(alg)
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	kid := uuid.NewString()
	pub, err := json.Marshal(jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"})
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
	return &storage.SigningKey{ID: kid, Algorithm: alg, PrivateSealed: sealed, PublicJWK: string(pub), State: state,
		Default: isDefault}, nil
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
