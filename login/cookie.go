package login

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// secretCookie is a cookie holding a random value of which the database
// keeps only a MAC, so a copy of the database cannot be replayed as a
// cookie. With an https issuer it is Secure and carries the __Host- prefix
// (no Domain, Path=/: it cannot be set by a sibling subdomain).
type secretCookie struct {
	base   string // the name without prefix
	key    []byte // MAC key, derived from the master key
	secure bool
}

func (c secretCookie) name() string {
	if c.secure {
		return "__Host-" + c.base
	}
	return c.base
}

// mac is what the database stores for a cookie value.
func (c secretCookie) mac(value string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(value))
	return m.Sum(nil)
}

// newValue returns a fresh random value: 256 bits, URL-safe.
func newValue() string {
	v := make([]byte, 32)
	rand.Read(v)
	return base64.RawURLEncoding.EncodeToString(v)
}

// set gives the browser the cookie; maxAge 0 makes it a browser-session
// cookie, a negative one deletes it.
func (c secretCookie) set(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: c.name(), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode})
}

// read returns the cookie's value if it is present and well formed.
func (c secretCookie) read(r *http.Request) (string, bool) {
	ck, err := r.Cookie(c.name())
	if err != nil {
		return "", false
	}
	if raw, err := base64.RawURLEncoding.DecodeString(ck.Value); err != nil || len(raw) != 32 {
		return "", false
	}
	return ck.Value, true
}
