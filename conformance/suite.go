package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// Plans, as the OpenID Foundation names them.
const (
	PlanBasic  = "oidcc-basic-certification-test-plan"
	PlanConfig = "oidcc-config-certification-test-plan"
	PlanLogout = "oidcc-rp-initiated-logout-certification-test-plan"
)

// module is one test module of a plan.
type module struct {
	name string
	plan string
	run  func(*M)
}

var modules []module

func register(plan, name string, run func(*M)) {
	modules = append(modules, module{name: name, plan: plan, run: run})
}

// Modules lists every module's name, plan by plan.
func Modules() []string {
	out := make([]string, len(modules))
	for i, m := range modules {
		out[i] = m.name
	}
	return out
}

// Result is what a module found.
type Result struct {
	Module   string
	Plan     string
	Failures []string
	Warnings []string
	Skipped  string // the reason, if the module did not apply
}

// Passed reports whether the module ran and found nothing to fail.
func (r Result) Passed() bool { return r.Skipped == "" && len(r.Failures) == 0 }

// Check runs one module against the provider and reports what it found.
func Check(cfg Config, name string) Result {
	for _, mod := range modules {
		if mod.name == name {
			return execute(cfg, mod)
		}
	}
	return Result{Module: name, Failures: []string{"no such module"}}
}

// Run runs the named modules (all if none) as subtests of t.
func Run(t *testing.T, cfg Config, names ...string) {
	if len(names) == 0 {
		names = Modules()
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			r := Check(cfg, name)
			for _, w := range r.Warnings {
				t.Logf("WARNING: %s", w)
			}
			for _, f := range r.Failures {
				t.Errorf("FAIL: %s", f)
			}
			if r.Skipped != "" {
				t.Skipf("skipped, as the official suite would: %s", r.Skipped)
			}
		})
	}
}

// abort stops a module after a failure it cannot continue past.
type abort struct{}

// skip stops a module that does not apply.
type skip struct{ reason string }

func execute(cfg Config, mod module) (r Result) {
	r = Result{Module: mod.name, Plan: mod.plan}
	m := &M{cfg: cfg, result: &r}
	if m.cfg.Wait == nil {
		m.cfg.Wait = time.Sleep
	}
	if m.cfg.Now == nil {
		m.cfg.Now = time.Now
	}
	defer func() {
		switch v := recover().(type) {
		case nil, abort:
		case skip:
			r.Skipped = v.reason
		default:
			panic(v)
		}
	}()
	m.discover()
	mod.run(m)
	return r
}

// M is a running module: the provider's metadata and what was found.
type M struct {
	cfg    Config
	result *Result
	disc   map[string]any
}

// Errorf records a failure and carries on.
func (m *M) Errorf(format string, args ...any) {
	m.result.Failures = append(m.result.Failures, fmt.Sprintf(format, args...))
}

// Fatalf records a failure and ends the module.
func (m *M) Fatalf(format string, args ...any) {
	m.Errorf(format, args...)
	panic(abort{})
}

// Warnf records what the official suite would only warn about.
func (m *M) Warnf(format string, args ...any) {
	m.result.Warnings = append(m.result.Warnings, fmt.Sprintf(format, args...))
}

// Skip ends a module that does not apply to this provider.
func (m *M) Skip(reason string) { panic(skip{reason}) }

// check records a failure unless ok.
func (m *M) check(ok bool, format string, args ...any) {
	if !ok {
		m.Errorf(format, args...)
	}
}

// client is an HTTP client for the back channel (token, userinfo, JWKS).
func (m *M) client() *http.Client {
	return &http.Client{Transport: m.cfg.Transport, Timeout: 30 * time.Second}
}

// browser is a fresh browser that stops at every client's redirect URIs.
func (m *M) browser() *Browser {
	c := m.cfg
	return NewBrowser(c.Transport, c.Client.RedirectURI, c.Client2.RedirectURI, c.PostClient.RedirectURI,
		c.Client.PostLogoutRedirectURI)
}

// discover fetches the discovery document.
func (m *M) discover() {
	resp, err := m.client().Get(m.cfg.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		m.Fatalf("discovery: %v", err)
	}
	defer resp.Body.Close()
	m.disc = map[string]any{}
	if resp.StatusCode != http.StatusOK {
		m.Fatalf("discovery: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&m.disc); err != nil {
		m.Fatalf("discovery: not JSON: %v", err)
	}
}

// endpoint is a URL from discovery; a missing one fails the module.
func (m *M) endpoint(name string) string {
	v, _ := m.disc[name].(string)
	if v == "" {
		m.Fatalf("discovery has no %s", name)
	}
	return v
}

// supports reports whether a discovery list contains value.
func (m *M) supports(list, value string) bool {
	vs, _ := m.disc[list].([]any)
	for _, v := range vs {
		if v == value {
			return true
		}
	}
	return false
}
