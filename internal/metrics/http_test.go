package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/stile-id/stile/internal/metrics"
)

// TestRouteLabels: a route with a variable is labelled by its template,
// whatever the value; a path no route matches is "unmatched"; an exact path
// under a prefix route has its own label, any other path the prefix; an
// unknown method is "other"; a handler that writes nothing counts as 200.
func TestRouteLabels(t *testing.T) {
	m := metrics.New("/static/special")
	r := mux.NewRouter()
	r.Use(m.Route)
	r.HandleFunc("/users/{id}", func(http.ResponseWriter, *http.Request) {}).Methods(http.MethodGet, "BREW")
	r.PathPrefix("/static/").HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := m.HTTP(r)
	for _, req := range []struct{ method, path string }{
		{"GET", "/users/1"}, {"GET", "/users/2"}, {"BREW", "/users/3"}, {"POST", "/users/4"},
		{"GET", "/nowhere"}, {"GET", "/static/a.css"}, {"GET", "/static/special"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range families["stile_http_requests_total"].GetMetric() {
		l := map[string]string{}
		for _, p := range s.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		got[l["route"]+" "+l["method"]+" "+l["code"]] = s.GetCounter().GetValue()
	}
	want := map[string]float64{
		"/users/{id} GET 200": 2, "/users/{id} other 200": 1, "unmatched POST 405": 1,
		"unmatched GET 404": 1, "/static/ GET 418": 1, "/static/special GET 418": 1,
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
