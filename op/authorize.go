package op

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// extras are the authorization parameters the library does not parse,
// read by stile's wrapper around /authorize and handed to
// CreateAuthRequest through the request context.
type extras struct {
	hasRequestURI bool
	claims        *claimsRequest
	claimsErr     error
	retryAfter    time.Duration // set by admitAuthRequest when the caller is over its limit
}

type extrasKey struct{}

// claimsRequest is the claims parameter (OpenID Connect Core §5.5): the
// claims a client asks for by name, for userinfo and for the ID token.
type claimsRequest struct {
	Userinfo map[string]json.RawMessage `json:"userinfo"`
	IDToken  map[string]json.RawMessage `json:"id_token"`
}

func names(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// withExtras refuses oversized requests before anything is stored, reads
// the parameters the library ignores from GET or POST, and answers 429
// when CreateAuthRequest found the caller over its limit.
func withExtras(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkSizes(w, r); err != nil {
			if tooLarge := (errTooLarge{}); errors.As(err, &tooLarge) {
				renderProblem(w, problem{Status: http.StatusBadRequest, Heading: "Sign-in request too large",
					What:   "The application sent a sign-in request that stile cannot accept: " + tooLarge.Error() + ".",
					Advice: "This is a fault in the application, not in your account. " + startAgain}.toAccount())
				return
			}
			next.ServeHTTP(w, r) // the library reports the malformed form
			return
		}
		var x extras
		x.hasRequestURI = r.Form.Get("request_uri") != ""
		if raw := r.Form.Get("claims"); raw != "" {
			x.claims = new(claimsRequest)
			x.claimsErr = json.Unmarshal([]byte(raw), x.claims)
		}
		next.ServeHTTP(&limitedWriter{ResponseWriter: w, x: &x}, r.WithContext(context.WithValue(r.Context(), extrasKey{}, &x)))
		if x.retryAfter > 0 {
			renderLimited(w, x.retryAfter)
		}
	})
}

// checkExtras refuses what stile does not support, in a way the library
// sends back to the client with the request's state.
func checkExtras(ctx context.Context, req *oidc.AuthRequest) (userinfo, idToken []string, err error) {
	x, _ := ctx.Value(extrasKey{}).(*extras)
	if x == nil {
		return nil, nil, nil
	}
	switch {
	case x.hasRequestURI:
		return nil, nil, &oidc.Error{ErrorType: "request_uri_not_supported", Description: "request_uri is not supported"}
	case x.claimsErr != nil:
		return nil, nil, oidc.ErrInvalidRequest().WithDescription("the claims parameter is not a valid JSON object")
	case req.ResponseMode != "" && req.ResponseMode != oidc.ResponseModeQuery && req.ResponseMode != oidc.ResponseModeFragment:
		return nil, nil, oidc.ErrInvalidRequest().WithDescription("response_mode must be query or fragment")
	case x.claims == nil:
		return nil, nil, nil
	}
	return names(x.claims.Userinfo), names(x.claims.IDToken), nil
}

// withIss adds the issuer to every authorization response, success or
// error (RFC 9207), so a client talking to several providers can tell which
// one answered. skip says which redirects are stile's own, not responses.
func withIss(issuer string, skip func(loc string) bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&issWriter{ResponseWriter: w, issuer: issuer, skip: skip}, r)
	})
}

type issWriter struct {
	http.ResponseWriter
	issuer string
	skip   func(string) bool
}

func (w *issWriter) WriteHeader(status int) {
	if loc := w.Header().Get("Location"); loc != "" && status >= 300 && status < 400 && !w.skip(loc) {
		w.Header().Set("Location", addIss(loc, w.issuer))
	}
	w.ResponseWriter.WriteHeader(status)
}

// addIss puts iss where the response's other parameters are: the fragment
// if they are there, else the query.
func addIss(loc, issuer string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	if u.Fragment != "" && (strings.Contains(u.Fragment, "code=") || strings.Contains(u.Fragment, "error=")) {
		q, _ := url.ParseQuery(u.Fragment)
		ownWords(q)
		q.Set("iss", issuer)
		u.RawFragment = q.Encode()
		u.Fragment, _ = url.PathUnescape(u.RawFragment)
		return u.String()
	}
	q := u.Query()
	ownWords(q)
	q.Set("iss", issuer)
	u.RawQuery = q.Encode()
	return u.String()
}

// ownWords puts an error response's error_description in stile's words
// (oautherrors.go): the library's texts ("…If you have any questions, you
// may contact the administrator of the application.") never reach the
// application.
func ownWords(q url.Values) {
	if code := q.Get("error"); code != "" {
		q.Set("error_description", describe(code, q.Get("error_description")))
	}
}
