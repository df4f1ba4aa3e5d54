package login

import (
	"context"
	"crypto/hmac"
	"errors"
	"net/http"

	"github.com/stile-id/stile/storage"
)

// Binder ties logins to the browser that started them. The browser holds a
// random value in a cookie; the database holds only its MAC, recorded on
// the authorization request at the /login hand-off and checked at every
// step and at the provider's callback. A login started in one browser cannot
// be finished, nor its code collected, from another.
type Binder struct{ cookie secretCookie }

// NewBinder returns a Binder. secure should be true when the issuer is https.
func NewBinder(key []byte, secure bool) *Binder {
	return &Binder{cookie: secretCookie{base: "stile_browser", key: key, secure: secure}}
}

// Ensure returns the browser's binding, setting a new cookie if it has none.
// The cookie lasts as long as the browser session.
func (b *Binder) Ensure(w http.ResponseWriter, r *http.Request) []byte {
	if got, ok := b.Get(r); ok {
		return got
	}
	value := newValue()
	b.cookie.set(w, value, 0)
	return b.cookie.mac(value)
}

// Get returns the browser's binding, if its cookie is present and well formed.
func (b *Binder) Get(r *http.Request) ([]byte, bool) {
	value, ok := b.cookie.read(r)
	if !ok {
		return nil, false
	}
	return b.cookie.mac(value), true
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
