package demo

import (
	"crypto/rand"
	"net/http"
	"sync"
	"time"
)

// A reload of the callback page sends the same code again, which stile
// answers once; the state cookie the exchange needed is gone too. So the
// demo keeps what it showed, in this process's memory, for a short while,
// under a random cookie of its own: reloading the very same address in the
// same browser shows the same page again, without asking stile. Any other
// browser, a changed address or an expired entry gets the page that says
// the sign-in is over.
//
// This is the demo relying party's own convenience, not stile's state: a
// real application keeps its session as it pleases. It holds tokens, so
// entries live only as long as a default access token (resultLifetime),
// are bound to the browser by an unguessable cookie, and are capped in
// number so nobody can make the demo hoard memory.
const (
	resultCookie   = "stile_demo_result"
	resultLifetime = 10 * time.Minute
	maxResults     = 1000
)

type shown struct {
	path, query string // the callback address the page answered
	res         result
	expires     time.Time
}

type results struct {
	now    func() time.Time
	secure bool // the cookie is Secure when the issuer is https

	mu sync.Mutex
	m  map[string]shown
}

func newResults(now func() time.Time, secure bool) *results {
	if now == nil {
		now = time.Now
	}
	return &results{now: now, secure: secure, m: map[string]shown{}}
}

// keep remembers what the callback at r showed and gives the browser the
// cookie to find it again; a result this browser had before is dropped.
func (s *results) keep(w http.ResponseWriter, r *http.Request, res result) {
	key := rand.Text()
	now := s.now()
	s.mu.Lock()
	if c, err := r.Cookie(resultCookie); err == nil {
		delete(s.m, c.Value)
	}
	for k, v := range s.m {
		if !now.Before(v.expires) {
			delete(s.m, k)
		}
	}
	if len(s.m) >= maxResults {
		s.dropOldest()
	}
	s.m[key] = shown{path: r.URL.Path, query: r.URL.RawQuery, res: res, expires: now.Add(resultLifetime)}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: resultCookie, Value: key, Path: "/demo/", MaxAge: int(resultLifetime / time.Second),
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

func (s *results) dropOldest() {
	var oldest string
	var at time.Time
	for k, v := range s.m {
		if oldest == "" || v.expires.Before(at) {
			oldest, at = k, v.expires
		}
	}
	delete(s.m, oldest)
}

// again returns what the callback at this very address showed this
// browser, if it is still kept.
func (s *results) again(r *http.Request) (result, bool) {
	c, err := r.Cookie(resultCookie)
	if err != nil {
		return result{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[c.Value]
	if !ok || !s.now().Before(v.expires) || v.path != r.URL.Path || v.query != r.URL.RawQuery {
		return result{}, false
	}
	return v.res, true
}
