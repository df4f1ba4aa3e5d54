package passhash

import (
	"crypto/md5"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"strings"
)

// itoa64 is phpass's base64 alphabet, shared by Drupal.
const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// phpassHash is a phpass "portable" hash ($P$, $H$: MD5) or Drupal's
// variant of it ($S$: SHA-512, the output cut to 55 characters). The
// setting is the first 12 characters: the prefix, one character for the
// log2 of the round count, eight characters of salt. Both are
//
//	h = H(salt ‖ password); repeat 2^log2 times: h = H(h ‖ password)
//
// then the setting followed by h in itoa64 (phpass crypt_private; Drupal 7
// includes/password.inc _password_crypt).
type phpassHash struct {
	encoded string
	setting string
	rounds  int
	newHash func() hash.Hash
	length  int  // the encoded length to compare: 34 for MD5, 55 for Drupal's SHA-512
	md5Pre  bool // Drupal's U$: the password was MD5'd (hex) by Drupal 6 first
	maxPass int  // Drupal refuses passwords over 512 bytes; phpass has no bound
}

func parsePhpass(encoded string) (verifier, error) {
	return parseSetting(encoded, md5.New, 34, 0)
}

// parseDrupal reads $S$, Drupal 7 to 10.0's hash (Drupal ≥ 10.1 writes
// bcrypt). Its round count goes up to 2^30 by Drupal's rules; Limits cuts
// that far lower.
func parseDrupal(encoded string) (verifier, error) {
	return parseSetting(encoded, sha512.New, 55, 512)
}

// parseDrupalUpgraded reads U$S$: a Drupal 6 MD5 that Drupal 7's upgrade
// wrapped in $S$ (user_update_7000), checked as $S$ over md5(password).
func parseDrupalUpgraded(encoded string) (verifier, error) {
	v, err := parseDrupal(encoded[1:])
	if err != nil {
		return nil, err
	}
	h := v.(phpassHash)
	h.md5Pre = true
	return h, nil
}

func parseSetting(encoded string, newHash func() hash.Hash, length, maxPass int) (verifier, error) {
	if len(encoded) != length {
		return nil, malformed("wrong length for its prefix")
	}
	log2 := strings.IndexByte(itoa64, encoded[3])
	if log2 < 7 || log2 > 30 {
		return nil, malformed("round count outside 2^7 to 2^30")
	}
	if log2 > Limits.PhpassLog2 {
		return nil, tooCostly("log2 of the round count", log2, Limits.PhpassLog2)
	}
	for _, c := range []byte(encoded[4:]) {
		if strings.IndexByte(itoa64, c) < 0 {
			return nil, malformed("character outside the phpass alphabet")
		}
	}
	return phpassHash{encoded: encoded, setting: encoded[:12], rounds: 1 << log2, newHash: newHash,
		length: length, maxPass: maxPass}, nil
}

func (h phpassHash) verify(password string) bool {
	if h.maxPass > 0 && len(password) > h.maxPass {
		return false
	}
	if h.md5Pre {
		sum := md5.Sum([]byte(password))
		password = hex.EncodeToString(sum[:])
	}
	got := h.compute(password)
	return subtle.ConstantTimeCompare([]byte(got), []byte(h.encoded)) == 1
}

func (h phpassHash) compute(password string) string {
	d := h.newHash()
	pw := []byte(password)
	d.Write([]byte(h.setting[4:12]))
	d.Write(pw)
	sum := d.Sum(nil)
	for range h.rounds {
		d.Reset()
		d.Write(sum)
		d.Write(pw)
		sum = d.Sum(sum[:0])
	}
	out := h.setting + encode64(sum)
	return out[:min(len(out), h.length)]
}

// encode64 is phpass's encode64 (and Drupal's _password_base64_encode):
// little-endian groups of three bytes, six bits at a time.
func encode64(in []byte) string {
	var b strings.Builder
	for i := 0; i < len(in); i += 3 {
		v := uint(in[i])
		n := 2
		if i+1 < len(in) {
			v |= uint(in[i+1]) << 8
			n = 3
		}
		if i+2 < len(in) {
			v |= uint(in[i+2]) << 16
			n = 4
		}
		for j := range n {
			b.WriteByte(itoa64[(v>>(6*j))&0x3f])
		}
	}
	return b.String()
}
