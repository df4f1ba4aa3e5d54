package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stile-id/stile/conformance"
)

// cost is the cryptography the server must do for one request: JWS
// signatures and argon2id hashes. It is read off what the server actually
// returned (a JWT is a signature, an opaque token is not), not assumed.
type cost struct {
	Signatures int `json:"signatures"`
	Hashes     int `json:"argon2id"`
}

// work is one request of a scenario.
type work func() (cost, error)

// scenario is one kind of request. worker gives worker w its request
// function; state that must not be shared (a session, a refresh chain)
// belongs to the worker.
type scenario struct {
	name      string
	requests  int
	worker    func(w int) work
	perWorker bool // at least one request per worker: a c=32 step of 30 sign-ins would be a c=30 one
}

// stepRequests is how many requests a step of c workers makes.
func (sc scenario) stepRequests(c int) int {
	if sc.perWorker {
		return max(sc.requests, c)
	}
	return sc.requests
}

// seed is a worker's signed-in browser: its SSO cookie for silent
// sign-ins, its access token for userinfo and introspection, and its
// refresh chain, which rotates with every refresh.
type seed struct {
	browser *conformance.Browser
	access  string
	refresh string
	idToken string
}

// seedSessions signs every seed account in once, on its own browser.
func (d *driver) seedSessions(ctx context.Context) ([]*seed, error) {
	seeds := make([]*seed, len(d.fx.seeds))
	err := parallel(len(seeds), 4, func(i int) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b := d.newBrowser()
		t, err := d.signIn(b, d.fx.seeds[i], "openid profile offline_access")
		if err != nil {
			return fmt.Errorf("seed sign-in %d: %w", i, err)
		}
		if t.RefreshToken == "" {
			return fmt.Errorf("seed sign-in %d: no refresh token for offline_access", i)
		}
		seeds[i] = &seed{browser: b, access: t.AccessToken, refresh: t.RefreshToken, idToken: t.IDToken}
		return nil
	})
	return seeds, err
}

// scenarios lists the matrix's rows, in an order that keeps each valid:
// userinfo and introspection use the seed access tokens before any refresh
// could retire them. n is -requests, signins -signin-requests.
func (d *driver) scenarios(seeds []*seed, n, signins int) []scenario {
	static := func(url string) func(int) work {
		return func(int) work { return func() (cost, error) { _, err := d.get(url, ""); return cost{}, err } }
	}
	tokenWork := func(f func() (tokens, error), hashes int) work {
		return func() (cost, error) {
			t, err := f()
			return cost{Signatures: t.signatures(), Hashes: hashes}, err
		}
	}
	var fresh atomic.Int64
	return []scenario{
		{"discovery", n, static(d.ep.Discovery), false},
		{"jwks", n, static(d.ep.JWKS), false},
		{"client_credentials", n, func(int) work { return tokenWork(d.clientCredentials, 0) }, false},
		{"userinfo", n, func(w int) work {
			return func() (cost, error) { _, err := d.get(d.ep.Userinfo, seeds[w].access); return cost{}, err }
		}, false},
		{"introspection", n, func(w int) work {
			return func() (cost, error) { return cost{}, d.introspect(seeds[w].access) }
		}, false},
		{"refresh", n, func(w int) work {
			s := seeds[w]
			return tokenWork(func() (tokens, error) {
				t, err := d.refresh(s.refresh)
				if err == nil {
					s.refresh = t.RefreshToken
				}
				return t, err
			}, 0)
		}, false},
		{"silent_sso", n, func(w int) work {
			return tokenWork(func() (tokens, error) { return d.silent(seeds[w].browser) }, 0)
		}, false},
		{"signin", signins, func(w int) work {
			return tokenWork(func() (tokens, error) {
				i := int(fresh.Add(1) - 1)
				if i >= len(d.fx.fresh) {
					return tokens{}, fmt.Errorf("signin: all %d fresh users used", len(d.fx.fresh))
				}
				return d.signIn(d.browserFrom(w), d.fx.fresh[i], "openid profile")
			}, 1)
		}, true},
	}
}

// probe reads the server's CPU and memory from /proc; pid 0: not local.
type probe struct {
	root string
	pid  int
}

func (p probe) cpu() (time.Duration, bool) {
	if p.pid == 0 {
		return 0, false
	}
	c, err := procCPU(p.root, p.pid)
	return c, err == nil
}

func (p probe) memory() (memory, bool) {
	if p.pid == 0 {
		return memory{}, false
	}
	m, err := procMemory(p.root, p.pid)
	return m, err == nil
}

// stepResult is one scenario at one concurrency.
type stepResult struct {
	Scenario    string   `json:"scenario"`
	Concurrency int      `json:"concurrency"`
	Requests    int      `json:"requests"`
	Errors      int      `json:"errors"`
	FirstError  string   `json:"first_error,omitempty"`
	Seconds     float64  `json:"seconds"`
	PerSecond   float64  `json:"req_per_s"`
	P50ms       float64  `json:"p50_ms"`
	P99ms       float64  `json:"p99_ms"`
	MaxMs       float64  `json:"max_ms"`
	ServerCPU   float64  `json:"server_cpu_ms"` // total over the step; 0 when not measured
	CPUPerReq   *float64 `json:"server_cpu_ms_per_req,omitempty"`
	Cost        cost     `json:"crypto"`
	RSS         int64    `json:"server_rss_bytes,omitempty"`
}

// runStep runs sc with c workers until n requests are done or the time
// cap passes, whichever is first.
func runStep(ctx context.Context, sc scenario, c int, limit time.Duration, pr probe) stepResult {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var (
		issued atomic.Int64
		mu     sync.Mutex
		lat    []time.Duration
		res    = stepResult{Scenario: sc.name, Concurrency: c}
		costOK bool
		wg     sync.WaitGroup
	)
	n := int64(sc.stepRequests(c))
	cpu0, haveCPU := pr.cpu()
	start := time.Now()
	for w := range c {
		do := sc.worker(w)
		wg.Go(func() {
			for ctx.Err() == nil && issued.Add(1) <= n {
				t0 := time.Now()
				k, err := do()
				d := time.Since(t0)
				mu.Lock()
				res.Requests++
				lat = append(lat, d)
				if err != nil {
					res.Errors++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
				} else if !costOK {
					res.Cost, costOK = k, true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if cpu1, ok := pr.cpu(); ok && haveCPU && res.Requests > 0 {
		res.ServerCPU = ms(cpu1 - cpu0)
		per := res.ServerCPU / float64(res.Requests)
		res.CPUPerReq = &per
	}
	if m, ok := pr.memory(); ok {
		res.RSS = m.RSS
	}
	l := summarise(lat)
	res.Seconds, res.P50ms, res.P99ms, res.MaxMs = elapsed.Seconds(), ms(l.P50), ms(l.P99), ms(l.Max)
	if elapsed > 0 {
		res.PerSecond = float64(res.Requests-res.Errors) / elapsed.Seconds()
	}
	return res
}
