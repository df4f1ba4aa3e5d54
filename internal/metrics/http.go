package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
)

// Unmatched is the route label of a request no route matched (mux's own
// 404 or 405, or one refused before routing).
const Unmatched = "unmatched"

// The outer middleware (HTTP) runs before routing and observes after the
// answer; only the router knows which route matched. So HTTP puts a note
// in the request's context, and Route — a mux middleware, run once a route
// matched — writes the route's template into it.
type routeKey struct{}

type routeNote struct{ route string }

// HTTP counts and times every request by route, method and status. Put it
// outermost, so a request refused before routing is counted too, and
// install Route on the router.
func (m *Metrics) HTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		note := &routeNote{route: Unmatched}
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), routeKey{}, note)))
		method := methodLabel(r.Method)
		m.duration.WithLabelValues(note.route, method).Observe(time.Since(start).Seconds())
		m.requests.WithLabelValues(note.route, method, strconv.Itoa(rec.code())).Inc()
	})
}

// Route is the mux middleware (router.Use) that names the matched route.
func (m *Metrics) Route(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if note, ok := r.Context().Value(routeKey{}).(*routeNote); ok {
			note.route = m.routeLabel(r)
		}
		next.ServeHTTP(w, r)
	})
}

// routeLabel is the matched route's path template: never the raw path,
// which the caller chooses.
func (m *Metrics) routeLabel(r *http.Request) string {
	if m.exact[r.URL.Path] {
		return r.URL.Path
	}
	route := mux.CurrentRoute(r)
	if route == nil {
		return Unmatched
	}
	if t, err := route.GetPathTemplate(); err == nil {
		return t
	}
	return Unmatched
}

var methods = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true}

// methodLabel bounds the method: a caller may send any token there.
func methodLabel(method string) string {
	if methods[method] {
		return method
	}
	return "other"
}

// recorder keeps the status a handler answered with.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 { // 1xx are interim; the final status comes later
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) code() int {
	if r.status == 0 { // the handler wrote nothing: net/http sends 200
		return http.StatusOK
	}
	return r.status
}
