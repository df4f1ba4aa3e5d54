package main

import (
	"bytes"
	"encoding/base64"
	"math"
	"strings"
	"testing"
)

func ptr(v float64) *float64 { return &v }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestCryptoAndOverhead(t *testing.T) {
	p := primitives{SignCPUms: 1.5, Argon2CPUms: 100}
	if got := p.cryptoMs(cost{Signatures: 2}); !near(got, 3) {
		t.Errorf("two signatures = %v ms, want 3", got)
	}
	if got := p.cryptoMs(cost{Signatures: 2, Hashes: 1}); !near(got, 103) {
		t.Errorf("a sign-in (2 signatures, 1 argon2id) = %v ms, want 103", got)
	}
	if o := overhead(ptr(3.75), 3); o == nil || !near(*o, 1.25) {
		t.Errorf("overhead(3.75 ms over 3 ms) = %v, want 1.25", o)
	}
	if o := overhead(ptr(0.2), 0); o != nil {
		t.Errorf("overhead of a request with no cryptography = %v, want none (CPU per request instead)", *o)
	}
	if o := overhead(nil, 3); o != nil {
		t.Errorf("overhead without server CPU = %v, want none", *o)
	}
}

// TestSummariseWeighsByRequests: a scenario's CPU per request is its total
// CPU over its total requests, not the mean of its steps' figures.
func TestSummariseWeighsByRequests(t *testing.T) {
	r := &report{Primitives: primitives{SignCPUms: 2}, Steps: []stepResult{
		{Scenario: "refresh", Concurrency: 1, Requests: 100, ServerCPU: 500, CPUPerReq: ptr(5), Cost: cost{Signatures: 2}},
		{Scenario: "refresh", Concurrency: 8, Requests: 300, ServerCPU: 900, CPUPerReq: ptr(3), Cost: cost{Signatures: 2}},
		{Scenario: "discovery", Concurrency: 1, Requests: 50, ServerCPU: 10, CPUPerReq: ptr(0.2)},
		{Scenario: "jwks", Concurrency: 1, Requests: 50}, // server CPU not measured
	}}
	r.summarise()
	ref := r.scenario("refresh")
	if ref == nil || ref.Requests != 400 || !near(*ref.CPUPerReq, 3.5) || !near(ref.CryptoMs, 4) || !near(*ref.Overhead, 0.875) {
		t.Fatalf("refresh summary = %+v, want 400 requests, 1400/400 = 3.5 ms per request, ratio 3.5/4", ref)
	}
	if d := r.scenario("discovery"); d.Overhead != nil || !near(*d.CPUPerReq, 0.2) {
		t.Errorf("discovery: overhead %v, CPU %v; want no ratio and 0.2 ms per request", d.Overhead, *d.CPUPerReq)
	}
	if j := r.scenario("jwks"); j.CPUPerReq != nil {
		t.Errorf("jwks without server CPU: %v ms per request, want none", *j.CPUPerReq)
	}
}

func TestTargets(t *testing.T) {
	r := &report{Label: "sqlite RS256", Database: "sqlite", Alg: "RS256",
		Primitives: primitives{SignCPUms: 2, Argon2CPUms: 100, Argon2Floor: 10},
		Server:     &serverInfo{IdleRSS: 20 << 20, RSSAfter: 90 << 20, RSSSettled: 70 << 20, ReadyMs: 120},
		Steps: []stepResult{
			{Scenario: "discovery", Concurrency: 8, Requests: 10, PerSecond: 1000},
			{Scenario: "client_credentials", Concurrency: 8, Requests: 10, PerSecond: 600},
			{Scenario: "refresh", Concurrency: 32, Requests: 10, ServerCPU: 48, CPUPerReq: ptr(4.8), Cost: cost{Signatures: 2}, P50ms: 10, P99ms: 60},
			{Scenario: "silent_sso", Concurrency: 8, Requests: 10, ServerCPU: 40, CPUPerReq: ptr(4), Cost: cost{Signatures: 2}},
			{Scenario: "signin", Concurrency: 8, Requests: 10, PerSecond: 8.5, P50ms: 100, P99ms: 300},
		}}
	r.summarise()
	r.evaluate()
	want := map[string]bool{
		"refresh overhead ratio (RS256)":                     true,  // 4.8 / 4 = 1.2
		"silent_sso overhead ratio (RS256)":                  true,  // 4 / 4 = 1.0
		"refresh p99 ÷ p50 at c=32":                          false, // 6×
		"client_credentials (opaque) ÷ discovery throughput": true,  // 0.6
		"two-step sign-in at c=8 ÷ argon2id floor":           false, // 0.85
		"signin p99 ÷ p50 at c=8":                            true,  // 3×
		"idle RSS after start":                               true,
		"RSS after the whole run (settled)":                  false,
		"ready after start (SQLite)":                         true,
	}
	for _, tg := range r.Targets {
		pass, ok := want[tg.Name]
		if !ok {
			t.Errorf("unexpected target %q for an RS256 SQLite run", tg.Name)
			continue
		}
		delete(want, tg.Name)
		if tg.Pass != pass || tg.Note != "" {
			t.Errorf("%s: %s, want pass=%v", tg.Name, tg.line(), pass)
		}
	}
	for name := range want {
		t.Errorf("missing target %q", name)
	}
	var out bytes.Buffer
	r.printTable(&out)
	if !strings.Contains(out.String(), "MISS  [sqlite RS256] refresh p99 ÷ p50 at c=32: 6.00×") ||
		!strings.Contains(out.String(), "PASS  [sqlite RS256] refresh overhead ratio (RS256): 1.20") {
		t.Errorf("the table's target lines:\n%s", out.String())
	}
}

// TestES256Target: on ES256 with SQLite the refresh is judged against one
// signature, and the RS256 ratios do not apply.
func TestES256Target(t *testing.T) {
	r := &report{Label: "x", Database: "sqlite", Alg: "ES256", Primitives: primitives{SignCPUms: 0.05},
		Steps: []stepResult{{Scenario: "refresh", Concurrency: 1, Requests: 10, ServerCPU: 3, CPUPerReq: ptr(0.3), Cost: cost{Signatures: 2}}}}
	r.summarise()
	r.evaluate()
	if len(r.Targets) != 1 || !strings.Contains(r.Targets[0].Name, "ES256") || !near(r.Targets[0].Value, 6) || r.Targets[0].Pass {
		t.Fatalf("targets = %+v, want one ES256 MISS at 6×", r.Targets)
	}
}

func TestSignaturesFromTokens(t *testing.T) {
	jws := func(header string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(header)) + ".e30.c2ln"
	}
	for _, tc := range []struct {
		name string
		t    tokens
		want int
	}{
		{"ID token and JWT access token", tokens{IDToken: jws(`{"alg":"RS256"}`), AccessToken: jws(`{"alg":"ES256","kid":"k"}`)}, 2},
		{"ID token and opaque access token", tokens{IDToken: jws(`{"alg":"EdDSA"}`), AccessToken: "dGhpcyBpcyBvcGFxdWU"}, 1},
		{"opaque client_credentials token", tokens{AccessToken: "a.b"}, 0},
		{"an unsigned JWT costs nothing", tokens{AccessToken: jws(`{"alg":"none"}`)}, 0},
		{"three dots of garbage are not a JWS", tokens{AccessToken: "%%.%%.%%"}, 0},
	} {
		if got := tc.t.signatures(); got != tc.want {
			t.Errorf("%s: %d signatures, want %d", tc.name, got, tc.want)
		}
	}
}
