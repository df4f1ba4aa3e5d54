package login

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"
)

// A route that exists answers any other method with 405 and Allow (RFC 9110
// §15.5.6), in the shape of its area. Without this the request falls
// through to the provider's catch-all and gets a 404, which tells a client
// the route does not exist and hides the real mistake.
//
// mux's own MethodNotAllowedHandler does not do it: a later route of the
// same subrouter whose prefix matches clears the mismatch, and the request
// falls through. So each subrouter ends in a route of its own that matches
// exactly the requests some other route of it would take with another
// method.

var errMethod = &Error{Code: CodeMethodNotAllowed, Message: "This endpoint does not take that method: see the Allow header."}

// wrongMethod is a subrouter's last route.
type wrongMethod struct {
	rt    *mux.Router
	write http.HandlerFunc
}

func (m wrongMethod) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", strings.Join(allowedMethods(m.rt, r), ", "))
	m.write(w, r)
}

// answerWrongMethods ends rt with its wrongMethod route; call it after
// rt's last route. The route runs behind rt's middleware.
func answerWrongMethods(rt *mux.Router, write http.HandlerFunc) {
	rt.NewRoute().MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool {
		return len(allowedMethods(rt, r)) > 0
	}).Handler(wrongMethod{rt: rt, write: write})
}

// allowedMethods are the methods for which a route of rt matches r.
func allowedMethods(rt *mux.Router, r *http.Request) []string {
	var allow []string
	rt.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		methods, err := route.GetMethods()
		if err != nil {
			return nil // a route for any method would have matched already
		}
		for _, m := range methods {
			probe := r.WithContext(r.Context())
			probe.Method = m
			if !slices.Contains(allow, m) && route.Match(probe, &mux.RouteMatch{}) {
				allow = append(allow, m)
			}
		}
		return nil
	})
	return allow
}

// wrongMethodJSON is the JSON APIs' 405.
func (h *Handler) wrongMethodJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	h.apiError(w, r, errMethod)
}

// wrongMethodPage is the pages' 405.
func (h *Handler) wrongMethodPage(w http.ResponseWriter, _ *http.Request) {
	h.render(w, http.StatusMethodNotAllowed, "message", page{Title: "Not available",
		Error: "This page cannot be opened this way. Go back to the application and start again."})
}

// answerWrongMethodsOnPages ends every subrouter under r that has no
// wrongMethod route yet (stile's HTML pages) with the page-shaped one.
func (h *Handler) answerWrongMethodsOnPages(r *mux.Router) {
	var pages []*mux.Router
	done := map[*mux.Router]bool{r: true}
	r.Walk(func(route *mux.Route, rt *mux.Router, _ []*mux.Route) error {
		if _, ok := route.GetHandler().(wrongMethod); ok {
			done[rt] = true
		} else if !slices.Contains(pages, rt) {
			pages = append(pages, rt)
		}
		return nil
	})
	for _, rt := range pages {
		if !done[rt] {
			answerWrongMethods(rt, h.wrongMethodPage)
		}
	}
}
