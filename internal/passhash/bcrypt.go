package passhash

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"

	"golang.org/x/crypto/bcrypt"
)

// bcryptHash is a $2a$, $2b$ or $2y$ string. The three differ only in how
// their makers treated bugs in other implementations, not in what a
// correct implementation computes; golang.org/x/crypto/bcrypt reads all
// three and compares in constant time.
type bcryptHash []byte

func parseBcrypt(encoded string) (verifier, error) {
	if len(encoded) != 60 {
		return nil, malformed("a bcrypt hash has 60 characters")
	}
	cost, err := bcrypt.Cost([]byte(encoded))
	if err != nil {
		return nil, malformed("bcrypt cost or salt")
	}
	if cost > Limits.BcryptCost {
		return nil, tooCostly("bcrypt cost", cost, Limits.BcryptCost)
	}
	return bcryptHash(encoded), nil
}

// verify compares the first 72 bytes of password, as every bcrypt does.
func (h bcryptHash) verify(password string) bool {
	return bcrypt.CompareHashAndPassword(h, []byte(password)) == nil
}

// wordPressHash is WordPress 6.8's "$wp" + bcrypt: the password is first
// run through HMAC-SHA384 keyed with "wp-sha384" and base64-encoded, so
// passwords longer than bcrypt's 72 bytes still count in full
// (wp-includes/pluggable.php, wp_hash_password and wp_check_password).
type wordPressHash struct{ inner bcryptHash }

func parseWordPress(encoded string) (verifier, error) {
	v, err := parseBcrypt(encoded[len("$wp"):])
	if err != nil {
		return nil, err
	}
	return wordPressHash{v.(bcryptHash)}, nil
}

func (h wordPressHash) verify(password string) bool {
	m := hmac.New(sha512.New384, []byte("wp-sha384"))
	m.Write([]byte(password))
	return h.inner.verify(base64.StdEncoding.EncodeToString(m.Sum(nil)))
}
