package passhash

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argon2Hash is a PHC string: $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>
// (or $argon2i$), salt and hash in unpadded standard base64, as the
// reference implementation, argon2-cffi, PHP's password_hash and stile
// write it. golang.org/x/crypto/argon2 computes version 19 (0x13) only.
type argon2Hash struct {
	id             bool // argon2id; else argon2i
	memory, passes uint32
	lanes          uint8
	salt, sum      []byte
}

func parseArgon2(encoded string) (verifier, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || (parts[1] != "argon2id" && parts[1] != "argon2i") {
		return nil, malformed("want $argon2id$v=19$m=…,t=…,p=…$salt$hash")
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return nil, malformed("argon2 version: only v=19 is supported")
	}
	h := argon2Hash{id: parts[1] == "argon2id"}
	var m, t, p uint64
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || n != 3 ||
		parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", m, t, p) {
		return nil, malformed("argon2 parameters")
	}
	if err := argon2Bounds(m, t, p); err != nil {
		return nil, err
	}
	h.memory, h.passes, h.lanes = uint32(m), uint32(t), uint8(p)
	b64 := base64.RawStdEncoding
	var err error
	if h.salt, err = b64.DecodeString(strings.TrimRight(parts[4], "=")); err != nil || len(h.salt) < 8 {
		return nil, malformed("argon2 salt")
	}
	if h.sum, err = b64.DecodeString(strings.TrimRight(parts[5], "=")); err != nil || len(h.sum) < 16 || len(h.sum) > 64 {
		return nil, malformed("argon2 hash")
	}
	return h, nil
}

// argon2Bounds refuses parameters that argon2 itself forbids (m < 8p) and
// those above Limits. Memory is the one that hurts: each run holds all of
// it, so it is bounded on its own as well as in product with the passes.
func argon2Bounds(m, t, p uint64) error {
	switch {
	case t < 1 || p < 1 || m < 8*p:
		return malformed("argon2 parameters: want t ≥ 1, p ≥ 1, m ≥ 8·p")
	case m > uint64(Limits.Argon2MemoryKiB):
		return tooCostly("argon2 memory (KiB)", m, Limits.Argon2MemoryKiB)
	case t > uint64(Limits.Argon2Time):
		return tooCostly("argon2 passes", t, Limits.Argon2Time)
	case p > uint64(Limits.Argon2Threads):
		return tooCostly("argon2 lanes", p, Limits.Argon2Threads)
	case m*t > 4*uint64(Limits.Argon2MemoryKiB):
		return tooCostly("argon2 memory × passes (KiB)", m*t, 4*Limits.Argon2MemoryKiB)
	}
	return nil
}

func (h argon2Hash) verify(password string) bool {
	key := argon2.Key
	if h.id {
		key = argon2.IDKey
	}
	got := key([]byte(password), h.salt, h.passes, h.memory, h.lanes, uint32(len(h.sum)))
	return subtle.ConstantTimeCompare(got, h.sum) == 1
}
