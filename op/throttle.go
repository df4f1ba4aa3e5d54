package op

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/stile-id/stile/internal/clientip"
)

// Per-source-address limits (Limits), counted in the database so every
// instance shares them. /authorize counts only requests that would store an
// auth request (CreateAuthRequest): a malformed one stores nothing, so it
// costs nothing to refuse and is not counted. The token, introspection and
// revocation endpoints share one counter, taken before anything else runs
// (client authentication included).

// temporarilyUnavailable is RFC 6749's error for an overloaded server; the
// library has no constant for it.
const temporarilyUnavailable = "temporarily_unavailable"

// errLimited is what CreateAuthRequest returns over the limit. The
// library would redirect it to the client; withExtras replaces that answer
// with a 429 page (see limitedWriter), so the error only reaches a client
// when stile's wrapper is absent.
var errLimited = &oidc.Error{ErrorType: temporarilyUnavailable,
	Description: "too many sign-in requests from this network; try again in a minute"}

// admitAuthRequest counts one stored auth request against the caller's
// address. Over the limit it records when to come back in the request's
// extras and returns errLimited. A database error refuses too: the request
// could not be stored anyway.
func (s *Storage) admitAuthRequest(ctx context.Context) error {
	key := "authorize:" + clientip.Subject(clientip.From(ctx))
	ok, retry, err := s.db.Hit(ctx, key, s.limits.AuthorizePerAddress)
	if err != nil {
		return s.serverError(ctx, "count auth request", err)
	}
	if ok {
		return nil
	}
	if x, _ := ctx.Value(extrasKey{}).(*extras); x != nil {
		x.retryAfter = retry
	}
	s.count.Throttled("authorize")
	s.log.InfoContext(ctx, "authorize rate limit", "client", clientip.From(ctx).String(), "retry_after", retry)
	return errLimited
}

// limitedWriter drops the library's answer (a redirect with errLimited)
// once admitAuthRequest has refused the request, so withExtras can answer
// 429 itself.
type limitedWriter struct {
	http.ResponseWriter
	x *extras
}

func (w *limitedWriter) WriteHeader(status int) {
	if w.x.retryAfter == 0 {
		w.ResponseWriter.WriteHeader(status)
	}
}

func (w *limitedWriter) Write(b []byte) (int, error) {
	if w.x.retryAfter > 0 {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// renderLimited is the 429 page of /authorize.
func renderLimited(w http.ResponseWriter, retry time.Duration) {
	setRetryAfter(w, retry)
	renderProblem(w, problemLimited)
}

// limitTokens guards the token, introspection and revocation endpoints.
// Over the limit the answer is an RFC 6749 §5.2-shaped JSON error with 429
// and Retry-After. The error code is temporarily_unavailable: RFC 6749
// defines it (for the authorization endpoint) as "cannot handle the request
// due to a temporary overloading", which is what a client should read;
// slow_down means "poll less often" to device-flow clients, and
// invalid_request would say the request itself was wrong.
func (p *Provider) limitTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		key := "token:" + clientip.Subject(clientip.From(ctx))
		ok, retry, err := p.leases.admit(ctx, key, p.storage.limits.TokenPerAddress)
		if err != nil {
			p.log.ErrorContext(ctx, "count token request", "err", err)
			httphelper.MarshalJSONWithStatus(w, oidc.ErrServerError().WithDescription("internal error"), http.StatusInternalServerError)
			return
		}
		if !ok {
			p.count.Throttled("token")
			p.log.InfoContext(ctx, "token rate limit", "path", r.URL.Path, "client", clientip.From(ctx).String(), "retry_after", retry)
			setRetryAfter(w, retry)
			httphelper.MarshalJSONWithStatus(w, &oidc.Error{ErrorType: temporarilyUnavailable,
				Description: "too many requests from this address; retry after " + strconv.Itoa(seconds(retry)) + " s"},
				http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func seconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(seconds(d), 1)))
}

// Caps on authorization parameters, checked before anything is stored: a
// request that exceeds one is refused with 400. state is generous (some
// client libraries pack encrypted properties into it), id_token_hint holds
// a whole ID token; everything else real clients send is far shorter.
const (
	maxAuthorizeInput = 16 << 10 // the whole query, or the whole POST body
	maxParam          = 2 << 10
)

var maxParamFor = map[string]int{"state": 4 << 10, "claims": 4 << 10, "id_token_hint": 8 << 10, "request": 8 << 10}

// errTooLarge names the first parameter over its cap.
type errTooLarge struct{ name string }

func (e errTooLarge) Error() string {
	if e.name == "" {
		return "the request is too large"
	}
	return "the parameter " + strconv.Quote(e.name) + " is too long"
}

// checkSizes reads the request's query and form within the caps.
func checkSizes(w http.ResponseWriter, r *http.Request) error {
	if len(r.URL.RawQuery) > maxAuthorizeInput {
		return errTooLarge{}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxAuthorizeInput)
	if err := r.ParseForm(); err != nil {
		if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
			return errTooLarge{}
		}
		return err
	}
	for name, values := range r.Form {
		limit, ok := maxParamFor[name]
		if !ok {
			limit = maxParam
		}
		for _, v := range values {
			if len(v) > limit {
				return errTooLarge{name: name}
			}
		}
	}
	return nil
}
