package op

import (
	"net/http"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// grantTypesSupported are the grants stile serves, as discovery says.
var grantTypesSupported = []string{"authorization_code", "refresh_token"}

// onlyGrants refuses, before the library sees it, a token request for a
// grant stile does not offer. The library always runs the JWT-bearer grant
// (RFC 7523) whatever the provider advertises, and answered a malformed
// assertion with a 500 carrying the parser's error (found by FuzzToken).
// A body that is not a form is refused here too: parsed once, it would look
// empty but valid to the library.
func onlyGrants(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			zop.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("The request is not a valid form."), nil)
			return
		}
		if g := r.Form.Get("grant_type"); g != "" && !slices.Contains(grantTypesSupported, g) {
			zop.RequestError(w, r, oidc.ErrUnsupportedGrantType().WithDescription("This grant type is not supported."), nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// noAssertion refuses client authentication by assertion (private_key_jwt,
// RFC 7523 §2.2), which stile does not offer, before the library: at the
// token endpoint it answered a refresh grant carrying one with a 500, and
// at introspection with a text/plain 401 quoting the JWT parser.
func noAssertion(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			zop.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("The request is not a valid form."), nil)
			return
		}
		if r.Form.Has("client_assertion") || r.Form.Has("client_assertion_type") {
			zop.RequestError(w, r, oidc.ErrInvalidClient().WithDescription("Client assertions (private_key_jwt) are not supported."), nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}
