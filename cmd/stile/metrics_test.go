package main

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestMetrics scrapes /metrics on the main listener and parses it with
// the Prometheus text parser, around what a user does: a sign-in counts
// its steps, the sign-in and its tokens; a wrong password counts as a
// failed step and no sign-in; a lock's 429 and the token limit's 429 count
// by limit; routes are labelled by their templates, whatever the path.
func TestMetrics(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL(t), func(c *appConfig) {
				c.HashPool.Size = 3
				c.OPLimits = &op.Limits{AuthorizePerAddress: op.DefaultLimits.AuthorizePerAddress,
					TokenPerAddress: storage.Rate{Limit: 4, Per: time.Minute}}
			})
			before := scrapeMetrics(t, f.s.URL+"/metrics")
			verifies := f.s.hasher.verifies.Load()
			testMetricsSignIn(t, f, before, verifies)
			testMetricsRoutes(t, f)
			testMetricsThrottle(t, f)
			s := scrapeMetrics(t, f.s.URL+"/metrics")
			if v := s.value("stile_password_hash_pool_size"); v != 3 {
				t.Errorf("hashing pool size %v, want the configured 3", v)
			}
			if _, ok := s["stile_password_hash_pool_in_use"]; !ok {
				t.Error("no hashing pool in-use gauge")
			}
			if _, ok := s["go_sql_open_connections"]; !ok || s.value("go_sql_open_connections", "db_name", d.Name) < 1 {
				t.Errorf("database pool: %v open connections for db_name %q", s.value("go_sql_open_connections", "db_name", d.Name), d.Name)
			}
			testMetricsPools(t, s, d.Name)
		})
	}
}

// testMetricsSignIn: one sign-in with TOTP on stile's pages, the code
// exchanged, the refresh token used; then a wrong password.
func testMetricsSignIn(t *testing.T, f *fixture, before scrape, verifies int64) {
	body := f.offline(t)
	if status, _ := f.refresh(t, body["refresh_token"].(string), "app", f.secret); status != http.StatusOK {
		t.Fatalf("refresh: %d", status)
	}
	after := scrapeMetrics(t, f.s.URL+"/metrics")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"stile_sign_ins_total", []string{"factor", "TOTP", "door", "pages"}, 1},
		{"stile_login_steps_total", []string{"step", "password", "factor", "PASSWORD", "outcome", "success"}, 1},
		{"stile_login_steps_total", []string{"step", "otp", "factor", "TOTP", "outcome", "success"}, 1},
		{"stile_login_steps_total", []string{"outcome", "invalid_credentials"}, 0},
		{"stile_tokens_issued_total", []string{"grant", "authorization_code"}, 1},
		{"stile_tokens_issued_total", []string{"grant", "refresh_token"}, 1},
		{"stile_password_hash_wait_seconds", nil, float64(f.s.hasher.verifies.Load() - verifies)},
	} {
		if got := after.value(c.name, c.labels...) - before.value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v grew by %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	b := newBrowser(t, f.s)
	p := b.submit(f.passwordPage(t, b, f.rp.authorize()), map[string]string{"username": "alice", "password": "wrong"})
	if p.status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", p.status)
	}
	wrong := scrapeMetrics(t, f.s.URL+"/metrics")
	if got := wrong.value("stile_login_steps_total", "step", "password", "outcome", "invalid_credentials"); got != 1 {
		t.Errorf("a wrong password counted %v invalid_credentials steps, want 1", got)
	}
	if got := wrong.value("stile_sign_ins_total"); got != 1 {
		t.Errorf("after a wrong password: %v sign-ins, want still 1", got)
	}
}

// testMetricsRoutes: the OTP page with its transaction in the query is
// labelled by its route; unknown paths under the provider's catch-all
// share its label ("/") instead of making one each; the JWKS, also under
// the catch-all, has its own.
func testMetricsRoutes(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	p := f.otpPage(t, b, f.rp.authorize(), f.alice)
	if p.url.Query().Get("transactionID") == "" {
		t.Fatalf("the OTP page %s carries no transactionID", p.url)
	}
	before := scrapeMetrics(t, f.s.URL+"/metrics")
	for _, path := range []string{"/keys", "/no-such-page-" + rand.Text(), "/no-such-page-" + rand.Text()} {
		resp, err := http.Get(f.s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	s := scrapeMetrics(t, f.s.URL+"/metrics")
	routes := s.labelValues("stile_http_requests_total", "route")
	for _, want := range []string{"/login/otp", "/login", "/authorize", "/authorize/callback", "/oauth/token", "/keys", "/metrics", "/"} {
		if !slices.Contains(routes, want) {
			t.Errorf("no requests labelled route=%q; routes: %v", want, routes)
		}
	}
	for _, r := range routes {
		if strings.ContainsAny(r, "?=") || strings.Contains(r, "no-such-page") || strings.Contains(r, p.url.Query().Get("transactionID")) {
			t.Errorf("a route label holds a raw path or query: %q", r)
		}
	}
	if got := s.value("stile_http_requests_total", "route", "/login/otp", "method", "GET", "code", "200"); got < 1 {
		t.Errorf("GET /login/otp?transactionID=… 200: counted %v times under its route", got)
	}
	catchAll := []string{"route", "/", "method", "GET", "code", "404"}
	if got := s.value("stile_http_requests_total", catchAll...) - before.value("stile_http_requests_total", catchAll...); got != 2 {
		t.Errorf("two unknown paths: the catch-all's 404s grew by %v, want 2", got)
	}
	if got := s.value("stile_http_request_duration_seconds", "route", "/login/otp", "method", "GET"); got < 1 {
		t.Errorf("no latency observed for /login/otp: %v", got)
	}
}

// testMetricsThrottle: five wrong passwords answer 401 and count nothing
// as throttled; the sixth meets the pair's lock (429). The token
// endpoint's address limit (4 a minute here, two already used) answers 429
// on the fifth call.
func testMetricsThrottle(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	login := f.passwordPage(t, b, f.rp.authorize())
	for i := range 5 {
		if p := b.submit(login, map[string]string{"username": "bob", "password": "wrong"}); p.status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i+1, p.status)
		}
	}
	if got := scrapeMetrics(t, f.s.URL+"/metrics").value("stile_throttled_total"); got != 0 {
		t.Fatalf("before any 429: %v throttled", got)
	}
	if p := b.submit(login, map[string]string{"username": "bob", "password": "wrong"}); p.status != http.StatusTooManyRequests {
		t.Fatalf("sixth wrong password: %d, want 429", p.status)
	}
	s := scrapeMetrics(t, f.s.URL+"/metrics")
	if got := s.value("stile_throttled_total", "limit", "lock"); got != 1 {
		t.Errorf("a lock's 429: stile_throttled_total{limit=lock} = %v, want 1", got)
	}
	if got := s.value("stile_login_steps_total", "step", "password", "outcome", "throttled"); got != 1 {
		t.Errorf("a lock's 429: %v throttled password steps, want 1", got)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-token"}}
	for i := 3; i <= 4; i++ { // calls 3 and 4 are within the limit
		if resp, _ := rawToken(t, f.s, form, "app", f.secret); resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("token call %d of 4 a minute: 429", i)
		}
	}
	if resp, _ := rawToken(t, f.s, form, "app", f.secret); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fifth token call: %d, want 429", resp.StatusCode)
	}
	if got := scrapeMetrics(t, f.s.URL+"/metrics").value("stile_throttled_total", "limit", "token"); got != 1 {
		t.Errorf("the token limit's 429: stile_throttled_total{limit=token} = %v, want 1", got)
	}
}

// scrape is one parsed scrape of /metrics.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, rawURL string) scrape {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", rawURL, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	return families
}

// value sums the samples of name whose labels include the given pairs: a
// counter's or gauge's value, a histogram's count of observations.
func (s scrape) value(name string, pairs ...string) float64 {
	var sum float64
	for _, m := range s.matching(name, pairs...) {
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func (s scrape) matching(name string, pairs ...string) []*dto.Metric {
	fam, ok := s[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
	for _, m := range fam.Metric {
		if hasLabels(m, pairs) {
			out = append(out, m)
		}
	}
	return out
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range m.Label {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// labelValues lists the distinct values of label across name's samples.
func (s scrape) labelValues(name, label string) []string {
	var out []string
	for _, m := range s.matching(name) {
		for _, l := range m.Label {
			if l.GetName() == label && !slices.Contains(out, l.GetValue()) {
				out = append(out, l.GetValue())
			}
		}
	}
	return out
}

// testMetricsPools: SQLite reports its one-connection writer and its read
// pool apart; PostgreSQL its one shared pool.
func testMetricsPools(t *testing.T, s scrape, name string) {
	t.Helper()
	if name != string(storage.SQLite) {
		if v := s.value("go_sql_max_open_connections", "db_name", name, "pool", "shared"); v < 1 {
			t.Errorf("shared pool: max open %v", v)
		}
		return
	}
	if v := s.value("go_sql_max_open_connections", "db_name", name, "pool", "write"); v != 1 {
		t.Errorf("SQLite write pool: max open %v, want 1", v)
	}
	if v := s.value("go_sql_max_open_connections", "db_name", name, "pool", "read"); v < 4 {
		t.Errorf("SQLite read pool: max open %v, want at least 4", v)
	}
}
