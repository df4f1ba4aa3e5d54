package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"time"
)

// Sealer encrypts secrets at rest with AES-256-GCM. The additional data
// (AAD) names where the ciphertext lives — table, column and row — so a
// sealed value copied elsewhere in the database does not open.
//
// A value names the master key that sealed it, so the master key can be
// replaced while instances serve (rotate.go):
//
//	version 2:  0x02 || key ID (8 bytes) || nonce (12) || ciphertext+tag,
//	            the version byte and key ID authenticated with the AAD
//	version 1:  0x01 || nonce || ciphertext+tag, sealed before key IDs:
//	            tried with every key the Sealer knows, its own first
//
// A Sealer seals with the newest key its Master knows: its own, or the new
// key of an open change. Its Master, once checked against the database,
// looks up a key it does not know when it meets one, and before each Seal
// (a rare event: an enrolment, a sign-up, a signing key), so an instance
// started before a rotation seals new values with the new key as soon as
// the rotation starts.
type Sealer struct {
	m *Master
}

const (
	sealV1 = 1
	sealV2 = 2
)

// v2Header is the length of a version-2 value's header.
const v2Header = 1 + keyIDSize

// NewSealer returns a Sealer over the master key's sealing keys.
func NewSealer(m *Master) *Sealer { return &Sealer{m: m} }

// lookupTimeout bounds the database read a Seal or an Open may make to
// learn a key; Seal and Open take no context (the login package's Sealer
// interface).
const lookupTimeout = 10 * time.Second

// Seal encrypts plaintext bound to aad with the newest key.
func (s *Sealer) Seal(plaintext, aad []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	if err := s.m.ring.refresh(ctx); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	k, err := s.m.ring.sealing()
	if err != nil {
		return nil, err
	}
	return k.seal(plaintext, aad), nil
}

// ErrUnseal means a ciphertext is corrupt, was sealed with another key, or
// was moved from where it was sealed.
var ErrUnseal = errors.New("cannot open sealed value")

// Open decrypts a value sealed with the same aad, with whichever key
// sealed it.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	pt, err := s.m.ring.open(sealed, aad)
	if !errors.Is(err, errUnknownKey) {
		return pt, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	if err := s.m.ring.refresh(ctx); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	pt, err = s.m.ring.open(sealed, aad)
	if errors.Is(err, errUnknownKey) {
		return nil, ErrUnseal
	}
	return pt, err
}

// SealedKeyID returns the ID (Master.ID) of the key that sealed a value,
// or "" for a version-1 value, which does not say.
func SealedKeyID(sealed []byte) string {
	if len(sealed) < v2Header || sealed[0] != sealV2 {
		return ""
	}
	return fmt.Sprintf("%x", sealed[1:v2Header])
}

// sealKey is one master key's sealing sub-key.
type sealKey struct {
	id   []byte // keyIDSize bytes of its check value
	file []byte // the key file's bytes, to wrap it for the other key of a change
	aead cipher.AEAD
}

func newSealKey(file []byte) *sealKey {
	block, err := aes.NewCipher(derive(file, "seal"))
	if err != nil {
		panic(fmt.Sprintf("aes: %v", err)) // cannot happen for a 32-byte key
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("gcm: %v", err))
	}
	return &sealKey{id: checkValue(file)[:keyIDSize], file: file, aead: aead}
}

// seal makes a version-2 value: the header is authenticated with aad.
func (k *sealKey) seal(plaintext, aad []byte) []byte {
	n := k.aead.NonceSize()
	out := make([]byte, v2Header+n, v2Header+n+len(plaintext)+k.aead.Overhead())
	out[0] = sealV2
	copy(out[1:], k.id)
	rand.Read(out[v2Header:])
	return k.aead.Seal(out, out[v2Header:], plaintext, headerAAD(out[:v2Header], aad))
}

func headerAAD(header, aad []byte) []byte {
	return append(append(make([]byte, 0, len(header)+len(aad)), header...), aad...)
}

func (k *sealKey) openV2(sealed, aad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < v2Header+n+k.aead.Overhead() {
		return nil, ErrUnseal
	}
	pt, err := k.aead.Open(nil, sealed[v2Header:v2Header+n], sealed[v2Header+n:], headerAAD(sealed[:v2Header], aad))
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}

func (k *sealKey) openV1(sealed, aad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < 1+n+k.aead.Overhead() {
		return nil, ErrUnseal
	}
	pt, err := k.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad)
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}
