package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Sealer encrypts secrets at rest with AES-256-GCM. The additional data
// (AAD) names where the ciphertext lives — table, column and row — so a
// sealed value copied elsewhere in the database does not open.
type Sealer struct {
	aead cipher.AEAD
}

// sealVersion prefixes every ciphertext, so the format can change later.
const sealVersion = 1

// NewSealer returns a Sealer with the master key's sealing sub-key.
func NewSealer(m *Master) *Sealer {
	block, err := aes.NewCipher(m.Derive("seal"))
	if err != nil {
		panic(fmt.Sprintf("aes: %v", err)) // cannot happen for a 32-byte key
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("gcm: %v", err))
	}
	return &Sealer{aead: aead}
}

// Seal encrypts plaintext bound to aad: version || nonce || ciphertext.
func (s *Sealer) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:])
	return s.aead.Seal(out, out[1:], plaintext, aad), nil
}

// ErrUnseal means a ciphertext is corrupt, was sealed with another key, or
// was moved from where it was sealed.
var ErrUnseal = errors.New("cannot open sealed value")

// Open decrypts a value sealed with the same aad.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrUnseal
	}
	pt, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad)
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}
