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

var errMethod = &Error{Code: CodeMethodNotAllowed, Message: "This endpoint does not take that method: see the Allow header."}

// answerWrongMethods makes rt answer a request for one of its paths with a
// method none of its routes serve: Allow lists the methods that would have
// matched, then write gives the body. mux calls a router's
// MethodNotAllowedHandler without the router's middleware, so write sets
// its own headers.
func answerWrongMethods(rt *mux.Router, write http.HandlerFunc) {
	rt.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(allowedMethods(rt, r), ", "))
		write(w, r)
	})
}

// allowedMethods are the methods for which a route of rt matches r.
func allowedMethods(rt *mux.Router, r *http.Request) []string {
	var allow []string
	rt.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		methods, err := route.GetMethods()
		if err != nil {
			return nil // a route for every method (a prefix): it would have matched
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
func (h *Handler) wrongMethodJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	h.apiError(w, errMethod)
}

// wrongMethodPage is the pages' 405.
func (h *Handler) wrongMethodPage(w http.ResponseWriter, r *http.Request) {
	securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h.render(w, http.StatusMethodNotAllowed, "message", page{Title: "Not available", Error: "This page cannot be opened this way. Go back to the application and start again."})
	})).ServeHTTP(w, r)
}

// answerWrongMethodsOnPages gives every subrouter under r that has no
// answer of its own yet (stile's HTML pages) the page-shaped 405.
func (h *Handler) answerWrongMethodsOnPages(r *mux.Router) {
	seen := map[*mux.Router]bool{r: true}
	r.Walk(func(_ *mux.Route, rt *mux.Router, _ []*mux.Route) error {
		if !seen[rt] && rt.MethodNotAllowedHandler == nil {
			answerWrongMethods(rt, h.wrongMethodPage)
		}
		seen[rt] = true
		return nil
	})
}
