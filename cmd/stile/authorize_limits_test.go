package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestProviderLimits attacks issue 9 items 9 and 5 (token endpoint) from
// many source addresses, simulated from loopback through a trusted proxy's
// X-Forwarded-For, on SQLite and on PostgreSQL.
func TestProviderLimits(t *testing.T) {
	scenarios := []struct {
		name string
		fn   func(*testing.T, *fixture)
	}{
		{"AuthorizeFloodFromOneAddress", testAuthorizeFlood},
		{"OversizedAuthorizeParameters", testOversizedParameters},
		{"TokenEndpointsPerAddress", testTokenLimit},
	}
	limits := &op.Limits{AuthorizePerAddress: storage.Rate{Limit: 5, Per: time.Minute},
		TokenPerAddress: storage.Rate{Limit: 10, Per: time.Minute}}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					sc.fn(t, newFixture(t, d.URL(t), func(c *appConfig) {
						trustLoopback(c)
						c.OPLimits = limits
					}))
				})
			}
		})
	}
}

// answer is a response read whole (also the fuzzers' in-process answers).
type answer struct {
	status int
	header http.Header
	body   string
}

// from sends req as if from addr behind the trusted proxy, without
// following redirects.
func from(t *testing.T, addr string, req *http.Request) answer {
	t.Helper()
	req.Header.Set("X-Forwarded-For", addr)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func (f *fixture) authorizeFrom(t *testing.T, addr string, extra ...string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.rp.authorize(extra...).url, nil)
	return from(t, addr, req)
}

func (f *fixture) authRequests(t *testing.T) int64 {
	t.Helper()
	n, err := f.s.db.CountRows(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n["auth_requests"]
}

// stored reports whether a response is the hand-off to the login page,
// which follows a stored auth request.
func stored(a answer) bool {
	return a.status == http.StatusFound && strings.Contains(a.header.Get("Location"), "/login?")
}

func testAuthorizeFlood(t *testing.T, f *fixture) {
	const attacker, bystander = "192.0.2.1", "198.51.100.7"
	for i := range 5 {
		if a := f.authorizeFrom(t, attacker); !stored(a) {
			t.Fatalf("authorization request %d within the limit: %d %s", i+1, a.status, a.header.Get("Location"))
		}
	}
	for range 20 {
		a := f.authorizeFrom(t, attacker)
		retry, _ := strconv.Atoi(a.header.Get("Retry-After"))
		if a.status != http.StatusTooManyRequests || retry < 1 || retry > 60 ||
			!strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || !strings.Contains(a.body, "Too many sign-in requests") ||
			a.header.Get("Location") != "" {
			t.Fatalf("over the limit: %d Retry-After %q Location %q\n%s", a.status, a.header.Get("Retry-After"), a.header.Get("Location"), a.body)
		}
	}
	if n := f.authRequests(t); n != 5 {
		t.Fatalf("%d auth requests stored for one address, want the 5 the limit admits", n)
	}
	// Another address is not affected, and a real browser still signs in.
	if a := f.authorizeFrom(t, bystander); !stored(a) {
		t.Fatalf("another address: %d", a.status)
	}
	b := newBrowser(t, f.s)
	f.signIn(t, b, f.rp.authorize(), f.alice) // from 127.0.0.1, its own address
	// Requests that store nothing are not counted: ten for an unknown
	// client leave the address its whole allowance.
	const sloppy = "198.51.100.99"
	for range 10 {
		if a := f.authorizeFrom(t, sloppy, "client_id", "no-such-client"); a.status != http.StatusBadRequest {
			t.Fatalf("unknown client: %d", a.status)
		}
	}
	if a := f.authorizeFrom(t, sloppy); !stored(a) {
		t.Fatalf("a valid request after refused ones: %d", a.status)
	}
	f.s.clock.Advance(time.Minute)
	if a := f.authorizeFrom(t, attacker); !stored(a) {
		t.Fatalf("the same address after the window: %d", a.status)
	}
}

func testOversizedParameters(t *testing.T, f *fixture) {
	const addr = "203.0.113.9"
	before := f.authRequests(t)
	huge := strings.Repeat("a", 200_000)
	long := strings.Repeat("b", 5000) // over every per-parameter cap, under the whole-request cap
	for _, name := range []string{"state", "nonce", "login_hint", "redirect_uri", "scope", "claims", "ui_locales", "acr_values", "prompt"} {
		for _, v := range []string{huge, long} {
			a := f.authorizeFrom(t, addr, name, v)
			if a.status != http.StatusBadRequest || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") ||
				!strings.Contains(a.body, "cannot accept") || a.header.Get("Location") != "" {
				t.Fatalf("%s of %d characters: %d %s\n%.300s", name, len(v), a.status, a.header.Get("Location"), a.body)
			}
		}
	}
	// The same by POST.
	form := url.Values{"client_id": {"app"}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {appRedirect},
		"code_challenge": {strings.Repeat("c", 43)}, "code_challenge_method": {"S256"}}
	for _, v := range []string{huge, long} {
		form.Set("state", v)
		req, _ := http.NewRequest(http.MethodPost, f.s.URL+"/authorize", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if a := from(t, addr, req); a.status != http.StatusBadRequest {
			t.Fatalf("POST with a state of %d characters: %d", len(v), a.status)
		}
	}
	if n := f.authRequests(t); n != before {
		t.Fatalf("oversized requests stored %d auth requests", n-before)
	}
	// The positive control: a long state a real client might send passes.
	if a := f.authorizeFrom(t, addr, "state", strings.Repeat("s", 2000)); !stored(a) {
		t.Fatalf("a 2000-character state: %d\n%.300s", a.status, a.body)
	}
	if n := f.authRequests(t); n != before+1 {
		t.Fatalf("%d auth requests stored, want one more", n-before)
	}
}

// introspectFrom asks /oauth/introspect about nothing in particular, as
// "app" from addr: a call the token limit counts.
func (f *fixture) introspectFrom(t *testing.T, addr string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.s.URL+"/oauth/introspect", strings.NewReader("token=nothing"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", f.secret)
	return from(t, addr, req)
}

func testTokenLimit(t *testing.T, f *fixture) {
	const attacker, bystander = "192.0.2.50", "2001:db8:1::1"
	for i := range 10 {
		if a := f.introspectFrom(t, attacker); a.status != http.StatusOK {
			t.Fatalf("call %d within the limit: %d %s", i+1, a.status, a.body)
		}
	}
	// Every endpoint of the three shares the count.
	for _, path := range []string{"/oauth/token", "/oauth/introspect", "/revoke"} {
		req, _ := http.NewRequest(http.MethodPost, f.s.URL+path, strings.NewReader("grant_type=refresh_token&refresh_token=x&token=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("app", f.secret)
		a := from(t, attacker, req)
		var body map[string]string
		json.Unmarshal([]byte(a.body), &body)
		retry, _ := strconv.Atoi(a.header.Get("Retry-After"))
		if a.status != http.StatusTooManyRequests || retry < 1 || body["error"] != "temporarily_unavailable" ||
			body["error_description"] == "" || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s over the limit: %d Retry-After %q %s", path, a.status, a.header.Get("Retry-After"), a.body)
		}
	}
	if a := f.introspectFrom(t, bystander); a.status != http.StatusOK {
		t.Fatalf("another address: %d %s", a.status, a.body)
	}
	f.s.clock.Advance(time.Minute)
	if a := f.introspectFrom(t, attacker); a.status != http.StatusOK {
		t.Fatalf("the same address after the window: %d %s", a.status, a.body)
	}
}

// TestRateFlags: the limit flags parse N/DURATION, refuse what they cannot
// mean, and /authorize's limit cannot be turned off.
func TestRateFlags(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want storage.Rate
		ok   bool
	}{
		{"60/1m", storage.Rate{Limit: 60, Per: time.Minute}, true},
		{"1200/m", storage.Rate{Limit: 1200, Per: time.Minute}, true},
		{" 10/30s ", storage.Rate{Limit: 10, Per: 30 * time.Second}, true},
		{"0/1m", storage.Rate{Per: time.Minute}, true},
		{"100/24h", storage.Rate{Limit: 100, Per: 24 * time.Hour}, true},
		{"60", storage.Rate{}, false},
		{"60/", storage.Rate{}, false},
		{"-1/1m", storage.Rate{}, false},
		{"x/1m", storage.Rate{}, false},
		{"60/100ms", storage.Rate{}, false},
		{"60/25h", storage.Rate{}, false},
		{"60/1m/2", storage.Rate{}, false},
	} {
		got, err := parseRate(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseRate(%q) = %v, %v", tc.in, got, err)
		}
	}
	if s := (rateValue{&storage.Rate{Limit: 60, Per: time.Minute}}).String(); s != "60/1m" {
		t.Errorf("rate shown as %q", s)
	}
	serve := func(env map[string]string, args ...string) error {
		return run(context.Background(), append([]string{"serve"}, args...), func(k string) string { return env[k] },
			strings.NewReader(""), io.Discard, io.Discard)
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--authorize-rate", "0/1m"}, "cannot be 0"},
		{map[string]string{"STILE_AUTHORIZE_RATE": "0/1m"}, nil, "cannot be 0"},
		{nil, []string{"--token-rate", "lots"}, "N/DURATION"},
		{map[string]string{"STILE_TOKEN_RATE": "5/1y"}, nil, "unknown unit"},
		{nil, []string{"--password-rate", "lots"}, "N/DURATION"},
		{map[string]string{"STILE_SEND_RATE": "3/1y"}, nil, "unknown unit"},
		{nil, []string{"--code-rate", "-1/1m"}, "not a count"},
	} {
		if err := serve(tc.env, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v with %v: %v, want an error saying %q", tc.args, tc.env, err, tc.want)
		}
	}
	// The positive control: valid rates, token limit off, pass validation.
	o := serveOptions{lifetimes: op.DefaultLifetimes, sessionIdle: time.Hour, sessionAbs: time.Hour, opLimits: op.DefaultLimits,
		hashPool: hashPoolOptions{memory: "512MiB", wait: login.DefaultPoolWait}, delivery: deliveryOptions{codeLifetime: login.DefaultDelivery.CodeLifetime}}
	o.opLimits.TokenPerAddress.Limit = 0
	if err := o.validate(); err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
}
