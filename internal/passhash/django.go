package passhash

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"
)

// djangoPBKDF2 is Django's default hasher: pbkdf2_sha256$<iterations>$<salt>$<base64 of 32 bytes>
// (django/contrib/auth/hashers.py, PBKDF2PasswordHasher). The salt is used
// as the text it is, not decoded.
type djangoPBKDF2 struct {
	iterations int
	salt       string
	sum        []byte
}

func parseDjangoPBKDF2(encoded string) (verifier, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 4 || parts[2] == "" {
		return nil, malformed("want pbkdf2_sha256$iterations$salt$hash")
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil || n < 1 {
		return nil, malformed("pbkdf2 iterations")
	}
	if n > Limits.PBKDF2Iterations {
		return nil, tooCostly("pbkdf2 iterations", n, Limits.PBKDF2Iterations)
	}
	sum, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(sum) != sha256.Size {
		return nil, malformed("pbkdf2 hash: want base64 of 32 bytes")
	}
	return djangoPBKDF2{iterations: n, salt: parts[2], sum: sum}, nil
}

func (h djangoPBKDF2) verify(password string) bool {
	got, err := pbkdf2.Key(sha256.New, password, []byte(h.salt), h.iterations, len(h.sum))
	return err == nil && subtle.ConstantTimeCompare(got, h.sum) == 1
}

// parseDjangoArgon2 reads Django's Argon2PasswordHasher: "argon2" before a
// PHC string from argon2-cffi, which is what Django verifies it with.
func parseDjangoArgon2(encoded string) (verifier, error) {
	return parseArgon2(strings.TrimPrefix(encoded, "argon2"))
}
