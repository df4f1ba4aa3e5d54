package login

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/internal/passhash"
)

// Hasher hashes and verifies passwords. The login takes it as an interface
// so a test can count how many hashes each path computes.
type Hasher interface {
	Hash(password string) (string, error)
	Verify(encoded, password string) (bool, error)
}

// Argon2id hashes passwords with argon2id into PHC strings
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash). Verify reads the parameters from
// the stored string, so raising them later keeps old hashes working.
type Argon2id struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultArgon2id is stronger than OWASP's minimum (19 MiB, t=2): 64 MiB,
// two passes, one lane — about a tenth of a second on one core.
var DefaultArgon2id = Argon2id{Memory: 64 * 1024, Time: 2, Threads: 1}

// MemoryBytes is what one hash with these parameters allocates: argon2id
// holds its whole memory parameter for the length of the run.
func (a Argon2id) MemoryBytes() int64 { return int64(a.Memory) << 10 }

const (
	saltLen = 16
	hashLen = 32
)

// Hash returns the PHC string of a new salted hash of password.
func (a Argon2id) Hash(password string) (string, error) {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	return a.phc(salt, argon2.IDKey([]byte(password), salt, a.Time, a.Memory, a.Threads, hashLen)), nil
}

func (a Argon2id) phc(salt, sum []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, a.Memory, a.Time, a.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(sum))
}

// StandIn returns a PHC string with a's parameters, a random salt and a
// random sum: no password matches it, and verifying against it costs one
// full hash, like a real one. Making it needs no hash, so a start does not
// spend a tenth of a second and 64 MiB on it.
func (a Argon2id) StandIn() (string, error) {
	b := make([]byte, saltLen+hashLen)
	rand.Read(b)
	return a.phc(b[:saltLen], b[saltLen:]), nil
}

// Verify reports whether password matches the PHC string, comparing in
// constant time. It computes exactly one argon2id hash. A hash that is not
// stile's own argon2id — one imported from another system (bcrypt,
// Django, Drupal, phpass…) — is checked by internal/passhash, within its
// work bounds; the login replaces it after the first sign-in (Current).
func (a Argon2id) Verify(encoded, password string) (bool, error) {
	p, salt, want, err := parsePHC(encoded)
	if err != nil || p.Memory > passhash.Limits.Argon2MemoryKiB {
		return passhash.Verify(encoded, password)
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// Current reports whether encoded is an argon2id hash with a's parameters:
// one the login need not replace after a successful sign-in.
func (a Argon2id) Current(encoded string) bool {
	p, salt, sum, err := parsePHC(encoded)
	return err == nil && p == a && len(salt) == saltLen && len(sum) == hashLen
}

var errPHC = errors.New("not an argon2id PHC string")

func parsePHC(s string) (p Argon2id, salt, sum []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, errPHC
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, errPHC
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, errPHC
	}
	if p.Memory < 8*1024 || p.Time < 1 || p.Threads < 1 {
		return p, nil, nil, fmt.Errorf("%w: parameters too weak", errPHC)
	}
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, errPHC
	}
	if sum, err = b64.DecodeString(parts[5]); err != nil || len(sum) < 16 {
		return p, nil, nil, errPHC
	}
	return p, salt, sum, nil
}

// Password rules live with the account operations (account/secrets.go),
// which every door shares.
const (
	MinPasswordLength = account.MinPasswordLength
	MaxPasswordLength = account.MaxPasswordLength
)

// CheckPasswordPolicy says what is wrong with a new password, if anything.
var CheckPasswordPolicy = account.CheckPasswordPolicy

// currentHash reports whether encoded needs no re-hash: stile's argon2id
// with the parameters of the hasher h (seen through a Pool), or of
// DefaultArgon2id when h cannot say (a test's wrapper).
func currentHash(h Hasher, encoded string) bool {
	if p, ok := h.(*Pool); ok {
		h = p.hasher
	}
	if c, ok := h.(interface{ Current(string) bool }); ok {
		return c.Current(encoded)
	}
	return DefaultArgon2id.Current(encoded)
}
