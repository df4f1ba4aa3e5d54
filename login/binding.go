package login

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"

	"github.com/stile-id/stile/storage"
)

// Binder ties logins to the browser that started them. The browser holds a
// random value in a cookie; the database holds only its MAC, recorded on
// the authorization request at the /login hand-off and checked at every
// step and at the provider's callback. A login started in one browser cannot
// be finished, nor its code collected, from another.
type Binder struct {
	key    []byte // MAC key, derived from the master key
	secure bool   // issuer is https: Secure cookie with the __Host- prefix
}

// NewBinder returns a Binder. secure should be true when the issuer is https.
func NewBinder(key []byte, secure bool) *Binder { return &Binder{key: key, secure: secure} }

func (b *Binder) cookieName() string {
	if b.secure {
		return "__Host-stile_browser"
	}
	return "stile_browser"
}

// mac is what the database stores for a cookie value.
func (b *Binder) mac(value string) []byte {
	m := hmac.New(sha256.New, b.key)
	m.Write([]byte(value))
	return m.Sum(nil)
}

// Ensure returns the browser's binding, setting a new cookie if it has none.
func (b *Binder) Ensure(w http.ResponseWriter, r *http.Request) []byte {
	if got, ok := b.Get(r); ok {
		return got
	}
	v := make([]byte, 32)
	rand.Read(v)
	value := base64.RawURLEncoding.EncodeToString(v)
	http.SetCookie(w, &http.Cookie{
		Name: b.cookieName(), Value: value, Path: "/",
		HttpOnly: true, Secure: b.secure, SameSite: http.SameSiteLaxMode,
	})
	return b.mac(value)
}

// Get returns the browser's binding, if its cookie is present and well formed.
func (b *Binder) Get(r *http.Request) ([]byte, bool) {
	c, err := r.Cookie(b.cookieName())
	if err != nil {
		return nil, false
	}
	if raw, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil || len(raw) != 32 {
		return nil, false
	}
	return b.mac(c.Value), true
}

// ErrNotBound means the request at hand does not come from the browser the
// authorization request is bound to.
var ErrNotBound = errors.New("the login belongs to another browser")

// AuthRequestStore is what Check needs of the store.
type AuthRequestStore interface {
	GetAuthRequest(ctx context.Context, id string) (*storage.AuthRequest, error)
}

// Check reports whether r comes from the browser that the authorization
// request is bound to. The provider's callback calls it before answering.
func (b *Binder) Check(r *http.Request, db AuthRequestStore, authRequestID string) error {
	got, ok := b.Get(r)
	if !ok {
		return ErrNotBound
	}
	ar, err := db.GetAuthRequest(r.Context(), authRequestID)
	if err != nil {
		return err
	}
	if len(ar.BindingHash) == 0 || !hmac.Equal(ar.BindingHash, got) {
		return ErrNotBound
	}
	return nil
}
