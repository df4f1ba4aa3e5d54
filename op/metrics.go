package op

import (
	"net/http"
	"slices"
)

// Counter hears what the provider issues and refuses, for metrics (cmd
// wires internal/metrics in). Labels come from fixed sets: the grants the
// token endpoint accepts (onlyGrants refuses any other before the library
// runs), "direct" for the headless direct mode, and the limit names
// "authorize" and "token". Config.Counter nil: nothing is counted.
type Counter interface {
	TokenIssued(grant string)
	Throttled(limit string)
}

type noCounter struct{}

func (noCounter) TokenIssued(string) {}
func (noCounter) Throttled(string)   {}

// countTokens counts the token endpoint's successful answers by grant.
// The form was parsed by the guards inside (formGuard), on this same
// request, so reading it here costs nothing. A grant outside
// grantTypesSupported cannot have succeeded; it is never a label.
func (p *Provider) countTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &okRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if g := r.PostForm.Get("grant_type"); rec.ok() && slices.Contains(grantTypesSupported, g) {
			p.count.TokenIssued(g)
		}
	})
}

// okRecorder notes whether the answer was a 200.
type okRecorder struct {
	http.ResponseWriter
	status int
}

func (o *okRecorder) WriteHeader(code int) {
	if o.status == 0 {
		o.status = code
	}
	o.ResponseWriter.WriteHeader(code)
}

func (o *okRecorder) Write(b []byte) (int, error) {
	if o.status == 0 {
		o.status = http.StatusOK
	}
	return o.ResponseWriter.Write(b)
}

func (o *okRecorder) Unwrap() http.ResponseWriter { return o.ResponseWriter }

func (o *okRecorder) ok() bool { return o.status == http.StatusOK }
