package op

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// grantTypesSupported are the grants stile serves, as discovery says.
var grantTypesSupported = []string{"authorization_code", "refresh_token", "client_credentials"}

// formGuard refuses, before the library sees it, a POST whose form check
// finds something stile does not offer. A body that is not a form is
// refused too: parsed once, it would look empty but valid to the library.
func formGuard(check func(url.Values) *oidc.Error) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				next.ServeHTTP(w, r)
				return
			}
			if err := r.ParseForm(); err != nil {
				zop.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("The request is not a valid form."), nil)
				return
			}
			if e := check(r.Form); e != nil {
				zop.RequestError(w, r, e, nil)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// onlyGrants refuses a token request for a grant stile does not offer. The
// library always runs the JWT-bearer grant (RFC 7523) whatever the
// provider advertises, and answered a malformed assertion with a 500
// carrying the parser's error (found by FuzzToken).
var onlyGrants = formGuard(func(f url.Values) *oidc.Error {
	if g := f.Get("grant_type"); g != "" && !slices.Contains(grantTypesSupported, g) {
		return oidc.ErrUnsupportedGrantType().WithDescription("This grant type is not supported.")
	}
	return nil
})

// noAssertion refuses client authentication by assertion (private_key_jwt,
// RFC 7523 §2.2), which stile does not offer: at the token endpoint the
// library answered a refresh grant carrying one with a 500, and at
// introspection with a text/plain 401 quoting the JWT parser.
var noAssertion = formGuard(func(f url.Values) *oidc.Error {
	if f.Has("client_assertion") || f.Has("client_assertion_type") {
		return oidc.ErrInvalidClient().WithDescription("Client assertions (private_key_jwt) are not supported.")
	}
	return nil
})
