package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage/storagetest"
)

// gatedHasher holds every password check inside Verify while its gate is
// shut, and counts how many are inside at once: saturation is decided by
// the test, not by how fast argon2id runs on a loaded machine.
type gatedHasher struct {
	login.Hasher
	entered     chan struct{} // one value per check that reached the hasher
	mu          sync.Mutex
	gate        chan struct{} // nil: open
	inFlight    atomic.Int64
	maxInFlight atomic.Int64
}

func newGatedHasher(h login.Hasher) *gatedHasher {
	return &gatedHasher{Hasher: h, entered: make(chan struct{}, 1024)}
}

// shut closes the gate and forgets the checks that entered before.
func (g *gatedHasher) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
	for len(g.entered) > 0 {
		<-g.entered
	}
}

func (g *gatedHasher) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

func (g *gatedHasher) Verify(encoded, password string) (bool, error) {
	n := g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	for m := g.maxInFlight.Load(); n > m && !g.maxInFlight.CompareAndSwap(m, n); m = g.maxInFlight.Load() {
	}
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	select {
	case g.entered <- struct{}{}:
	default: // only a benchmark, which never reads it, fills it
	}
	if gate != nil {
		<-gate
	}
	return g.Hasher.Verify(encoded, password)
}

// floodAnswer is one answer to a flood request, as its door shows it.
type floodAnswer struct {
	door   string
	status int
	retry  string
	body   string // the HTML page, or the JSON error code
	err    error
}

// TestPasswordFlood is issue 9's memory attack: 200 concurrent wrong
// passwords, from 200 addresses (as a botnet would send them, so no
// per-address or per-account limit is what stops them) on stile's pages, the
// JSON API and the direct mode, against a pool of 2. Never more than 2
// hashes run; the other 198 get a fast 503 with Retry-After while the two
// are still held; discovery, the token endpoint and userinfo keep
// answering; once the checks finish, the owner signs in.
func TestPasswordFlood(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { testPasswordFlood(t, d.URL(t)) })
	}
}

func testPasswordFlood(t *testing.T, dbURL string) {
	var gate *gatedHasher
	mb, gw := newMailbox(t), newSMSGateway(t)
	s := startServer(t, dbURL, delivery(t, mb, gw), func(c *appConfig) {
		gate = newGatedHasher(c.Hasher)
		c.Hasher = gate
		c.HashPool = hashPool{Size: 2, Wait: 50 * time.Millisecond}
		trustLoopback(c)
	})
	h := seedHeadless(t, s, mb, gw)
	dm := h.dmAdd(t, "cms")
	// Before the flood: a user holds tokens, and two logins wait for a password.
	tokens := h.offline(t)
	pages := newBrowser(t, s)
	form := h.passwordPage(t, pages, h.rp.authorize())
	action, fields := form.form(t)
	arID, _ := h.handoff(t, newBrowser(t, s))

	gate.shut()
	const n = 200
	answers := make(chan floodAnswer, n)
	for i := range n {
		addr := fmt.Sprintf("198.51.%d.%d", i/250, i%250+1)
		name := fmt.Sprintf("ghost%03d", i) // unknown names: the dummy check is in the pool too
		switch i % 3 {
		case 0:
			go func() { answers <- pageGuess(pages, form.url.ResolveReference(action).String(), fields, name, addr) }()
		case 1:
			go func() {
				answers <- apiGuess("api", s.URL+"/login/api/authenticate", addr, h.authBody(arID, name, "wrong password"),
					"Origin", customOrigin)
			}()
		default:
			go func() {
				answers <- apiGuess("direct", s.URL+"/headless/authenticate", addr, map[string]string{
					"username": name, "password": "wrong password", "apiKey": dm.apiKey}, "X-End-User-IP", addr)
			}()
		}
	}
	// Two checks take the two slots and stay in the hasher, gate shut.
	// Every other answer must arrive meanwhile: a pile-up would hold them
	// all and this loop would never finish.
	<-gate.entered
	<-gate.entered
	busy := map[string]int{}
	deadline := time.After(2 * time.Minute) // a hang guard, not a timing assertion
	for range n - 2 {
		select {
		case a := <-answers:
			checkBusy(t, a)
			busy[a.door]++
		case <-deadline:
			t.Fatalf("only %v answered while two checks were held: the rest piled up", busy)
		}
	}
	if m := gate.maxInFlight.Load(); m != 2 || len(gate.entered) != 0 {
		t.Fatalf("%d checks ran at once and %d more entered the hasher, want 2 and none", m, len(gate.entered))
	}
	t.Logf("while saturated: 503 by door %v", busy)
	stillAnswering(t, h, tokens)

	gate.open()
	for range 2 {
		if a := <-answers; a.err != nil || a.status != http.StatusUnauthorized {
			t.Fatalf("a held check (%s) after the gate opened: %d %v %s, want 401", a.door, a.status, a.err, a.body)
		}
	}
	// Positive control: with the pool free again, the owner signs in on
	// every door (a new TOTP step: the first sign-in used this one).
	s.clock.Advance(30 * time.Second)
	h.offline(t)
	id, _ := h.handoff(t, newBrowser(t, s))
	expect(t, "authenticate after the flood", h.authenticate(t, id, h.alice), http.StatusOK, "")
	h.dmAuth(t, dm.apiKey, h.alice, "TOTP")
}

// pageGuess posts the password form as a browser at addr would.
func pageGuess(b *browser, action string, fields url.Values, name, addr string) floodAnswer {
	form := url.Values{}
	for k, v := range fields {
		form[k] = v
	}
	form.Set("username", name)
	form.Set("password", "wrong password")
	p, err := b.b.Post(action, form, "X-Forwarded-For", addr)
	if err != nil {
		return floodAnswer{door: "pages", err: err}
	}
	return floodAnswer{door: "pages", status: p.Status, retry: p.Header.Get("Retry-After"), body: p.Body}
}

// apiGuess posts JSON as a custom login page or a CMS backend at addr would.
// It runs beside the test, so it reports errors instead of failing.
func apiGuess(door, target, addr string, body map[string]string, header ...string) floodAnswer {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", addr)
	req.Header.Set(header[0], header[1])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return floodAnswer{door: door, err: err}
	}
	defer resp.Body.Close()
	var out struct{ Status, Error string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return floodAnswer{door: door, status: resp.StatusCode, err: fmt.Errorf("not JSON: %w", err)}
	}
	if out.Status != "FAILED" {
		out.Error = "status " + out.Status
	}
	return floodAnswer{door: door, status: resp.StatusCode, retry: resp.Header.Get("Retry-After"), body: out.Error}
}

// checkBusy checks one refused guess: 503 with Retry-After, the password
// form again with a message on the pages, temporarily_unavailable in JSON.
func checkBusy(t *testing.T, a floodAnswer) {
	t.Helper()
	if a.err != nil || a.status != http.StatusServiceUnavailable || a.retry == "" {
		t.Fatalf("a %s guess while the pool was full: %d Retry-After %q %v\n%s", a.door, a.status, a.retry, a.err, a.body)
	}
	switch a.door {
	case "pages":
		if !strings.Contains(a.body, "too many sign-ins right now") || !strings.Contains(a.body, `name="password"`) {
			t.Fatalf("the busy page does not say so on the password form:\n%s", a.body)
		}
	default:
		if a.body != string(login.CodeBusy) {
			t.Fatalf("a %s guess while the pool was full: error %q, want %s", a.door, a.body, login.CodeBusy)
		}
	}
}

// stillAnswering checks that what needs no password hash works while
// every hash is taken: discovery, a refresh grant, userinfo.
func stillAnswering(t *testing.T, h *hfixture, tokens map[string]any) {
	t.Helper()
	resp, err := http.Get(h.s.URL + "/.well-known/openid-configuration")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery while saturated: %v %v", resp, err)
	}
	resp.Body.Close()
	status, body := h.refresh(t, tokens["refresh_token"].(string), "app", h.secret)
	if status != http.StatusOK {
		t.Fatalf("refresh grant while saturated: %d %v", status, body)
	}
	if st := h.userinfoStatus(t, body["access_token"].(string)); st != http.StatusOK {
		t.Fatalf("userinfo while saturated: %d", st)
	}
}
