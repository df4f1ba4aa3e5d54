package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/login"
)

// Issue 9 items 2 and 3: the session hand-over ticket and the redirectURI
// work only in the bound browser, and each transaction only at its own
// front door.

func TestDoors(t *testing.T) {
	runHeadless(t, []hscenario{
		{"TicketOtherBrowser", testTicketOtherBrowser},
		{"TicketOtherRequest", testTicketOtherRequest},
		{"CrossDoorMatrix", testCrossDoorMatrix},
		{"APIOnlyWithLoginURL", testAPIOnlyWithLoginURL},
	})
}

// apiLogin signs emma in through the JSON API in browser b (which did the
// hand-off) and returns the verify answer, with its redirectURI.
func (h *hfixture) apiLogin(t *testing.T, b *browser) (apiResult, *authorization) {
	t.Helper()
	arID, az := h.handoff(t, b)
	r := h.authenticate(t, arID, h.emma)
	expect(t, "authenticate emma", r, http.StatusOK, "")
	code := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	v := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": code})
	expect(t, "verify emma", v, http.StatusOK, "")
	if !strings.Contains(v.str("redirectURI"), "/login/session?") {
		t.Fatalf("verify: redirectURI %q, want the session hand-over", v.str("redirectURI"))
	}
	return v, az
}

// refusedTicket opens redirectURI in b and checks it is refused with status
// on a page, with no session cookie set.
func refusedTicket(t *testing.T, what string, b *browser, redirectURI string, status int) {
	t.Helper()
	p := b.get(redirectURI)
	if p.status != status || p.url.Path != "/login/session" || !strings.Contains(p.body, "Sign-in stopped") {
		t.Fatalf("%s: %d at %s, want %d on the message page:\n%s", what, p.status, p.url, status, p.body)
	}
	if c := b.cookie("stile_session"); c != nil {
		t.Fatalf("%s: the browser got a session cookie", what)
	}
	if c := b.cookie("stile_device"); c != nil {
		t.Fatalf("%s: the browser got a device cookie", what)
	}
}

// testTicketOtherBrowser is the login CSRF of issue 9 item 2: the attacker
// signs in as himself (emma here) through the API and sends the ticket
// link to a victim. The victim's browser — cookieless, or with a binding of
// its own — is refused and gets no cookie; the ticket is then dead even for
// the browser it belonged to. Positive control: the bound browser redeems a
// fresh ticket.
func testTicketOtherBrowser(t *testing.T, h *hfixture) {
	attacker := newBrowser(t, h.s)
	v, _ := h.apiLogin(t, attacker)
	victim := newBrowser(t, h.s)
	refusedTicket(t, "the ticket in a cookieless browser", victim, v.str("redirectURI"), http.StatusForbidden)
	refusedTicket(t, "the refused ticket in its own browser", attacker, v.str("redirectURI"), http.StatusGone)
	if !strings.Contains(h.s.logs.String(), "session hand-over refused") {
		t.Error("the refused hand-over was not logged")
	}

	// A victim whose browser is bound to a sign-in of its own.
	h.s.clock.Advance(time.Minute) // past the per-minute send limit
	v, _ = h.apiLogin(t, attacker)
	bound := newBrowser(t, h.s)
	h.handoff(t, bound)
	refusedTicket(t, "the ticket in a browser bound elsewhere", bound, v.str("redirectURI"), http.StatusForbidden)
	refusedTicket(t, "the refused ticket in its own browser", attacker, v.str("redirectURI"), http.StatusGone)

	// Positive control: the browser that did the hand-off redeems its
	// ticket, once, and the client gets its code.
	h.s.clock.Advance(time.Minute)
	v, az := h.apiLogin(t, attacker)
	h.finishAPI(t, attacker, az, v)
	if attacker.cookie("stile_session") == nil {
		t.Fatal("the bound browser got no session cookie")
	}
	if c := attacker.cookie("stile_device"); c == nil || !strings.HasPrefix(c.Value, h.emma.ID+".") {
		t.Fatalf("the bound browser got no device cookie for emma: %v", c)
	}
	second := newBrowser(t, h.s)
	refusedTicket(t, "a redeemed ticket in another browser", second, v.str("redirectURI"), http.StatusForbidden)
}

// testTicketOtherRequest: the ticket is bound to its authorization request,
// so pointing it at the victim's own request (to which the victim's browser
// is bound) does not help either.
func testTicketOtherRequest(t *testing.T, h *hfixture) {
	attacker, victim := newBrowser(t, h.s), newBrowser(t, h.s)
	v, _ := h.apiLogin(t, attacker)
	victimAR, _ := h.handoff(t, victim)
	u, _ := url.Parse(v.str("redirectURI"))
	q := u.Query()
	q.Set("authRequestID", victimAR)
	u.RawQuery = q.Encode()
	refusedTicket(t, "the ticket beside the victim's request", victim, u.String(), http.StatusGone)
	// Positive control: the attacker's own browser still holds its untouched ticket.
	p := attacker.get(v.str("redirectURI"))
	if loc := p.location(t); loc.Scheme+"://"+loc.Host+loc.Path != customRedirect || attacker.cookie("stile_session") == nil {
		t.Fatalf("the bound browser's ticket: ended at %s", loc)
	}
}

// doorTx is a transaction of emma's opened at one door, with what each door
// would need to go on with it.
type doorTx struct {
	door, id, arID, code string
	browser              *browser // the browser bound to it (pages, API); a fresh one for direct
	az                   *authorization
}

// openDoors opens one transaction for emma at each door.
func (h *hfixture) openDoors(t *testing.T, c *dmClient) []*doorTx {
	t.Helper()
	mailed := func() string { return codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code")) }
	pages := &doorTx{door: "pages", browser: newBrowser(t, h.s), az: h.rp.authorize()}
	p := h.otpPage(t, pages.browser, pages.az, h.emma)
	pages.id, pages.arID, pages.code = p.url.Query().Get("transactionID"), p.url.Query().Get("authRequestID"), mailed()

	h.s.clock.Advance(time.Minute) // one code a minute: far below the send limits
	api := &doorTx{door: "api", browser: newBrowser(t, h.s)}
	api.arID, api.az = h.handoff(t, api.browser)
	r := h.authenticate(t, api.arID, h.emma)
	expect(t, "authenticate emma", r, http.StatusOK, "")
	api.id, api.code = r.str("transactionID"), mailed()

	h.s.clock.Advance(time.Minute)
	direct := &doorTx{door: "direct", browser: newBrowser(t, h.s)}
	direct.id, direct.code = h.dmAuth(t, c.apiKey, h.emma, login.MethodEmail), mailed()
	for _, tx := range []*doorTx{pages, api, direct} {
		if tx.id == "" || tx.code == "" {
			t.Fatalf("%s transaction: %+v", tx.door, tx)
		}
	}
	return []*doorTx{pages, api, direct}
}

// doorEndpoint tries a transaction at one endpoint, with its right code
// where the endpoint takes one, and returns the status and the error code
// (for the JSON doors).
type doorEndpoint struct {
	door, name string
	try        func(tx *doorTx) (int, string)
}

func (h *hfixture) doorEndpoints(t *testing.T, c *dmClient) []doorEndpoint {
	form := func(tx *doorTx, otp string) url.Values {
		v := url.Values{"transactionID": {tx.id}, "authRequestID": {tx.arID}}
		if otp != "" {
			v.Set("otp", otp)
		}
		return v
	}
	page := func(p *page) (int, string) { return p.status, "" }
	api := func(r apiResult) (int, string) { return r.status, r.str("error") }
	return []doorEndpoint{
		{"pages", "GET /login/otp", func(tx *doorTx) (int, string) {
			return page(tx.browser.get(h.s.URL + "/login/otp?" + form(tx, "").Encode()))
		}},
		{"pages", "POST /login/otp", func(tx *doorTx) (int, string) { return page(tx.browser.post(h.s.URL+"/login/otp", form(tx, tx.code))) }},
		{"pages", "POST /login/otp/resend", func(tx *doorTx) (int, string) {
			return page(tx.browser.post(h.s.URL+"/login/otp/resend", form(tx, "")))
		}},
		// A cookieless client, as in the attack: no Origin, no cookie.
		{"api", "POST /login/api/verify", func(tx *doorTx) (int, string) {
			return api(h.call(t, "/login/api/verify", "", map[string]string{"transactionID": tx.id, "otp": tx.code}))
		}},
		{"api", "POST /login/api/resend", func(tx *doorTx) (int, string) {
			return api(h.call(t, "/login/api/resend", "", map[string]string{"transactionID": tx.id}))
		}},
		{"direct", "POST /headless/login", func(tx *doorTx) (int, string) {
			return api(h.dmLogin(t, c.apiKey, "emma", tx.id, login.MethodEmail, tx.code))
		}},
	}
}

// testCrossDoorMatrix names each kind of transaction at every endpoint of
// the other doors, with the right code: each is refused with 403 (JSON:
// wrong_browser), nothing panics, and nothing is spent — each transaction
// then finishes at its own door with the same code (the positive control).
// The pages endpoints are called by the very browser an API transaction's
// request is bound to, which shares its binding.
func testCrossDoorMatrix(t *testing.T, h *hfixture) {
	c := h.dmAdd(t, "cms")
	txs := h.openDoors(t, c)
	mails := h.mail.count("emma@example.com")
	h.s.clock.Advance(time.Minute) // past the resend wait: a resend would send
	for _, tx := range txs {
		for _, e := range h.doorEndpoints(t, c) {
			if e.door == tx.door {
				continue
			}
			status, code := e.try(tx)
			if status != http.StatusForbidden || (e.door != "pages" && code != string(login.CodeWrongBrowser)) {
				t.Errorf("%s transaction at %s: %d %q, want 403 wrong_browser", tx.door, e.name, status, code)
			}
		}
	}
	if n := h.mail.count("emma@example.com"); n != mails {
		t.Errorf("refused resends sent %d codes", n-mails)
	}
	if strings.Contains(h.s.logs.String(), "panic") {
		t.Fatal("a handler panicked")
	}

	pages, api, direct := txs[0], txs[1], txs[2]
	p := pages.browser.post(h.s.URL+"/login/otp", url.Values{"transactionID": {pages.id}, "authRequestID": {pages.arID}, "otp": {pages.code}})
	signedInAs(t, h.rp, pages.az, p.location(t), h.emma, "pwd otp mfa")
	h.finishAPI(t, api.browser, api.az, h.call(t, "/login/api/verify", customOrigin,
		map[string]string{"transactionID": api.id, "otp": api.code}))
	h.dmTokens(t, c, h.dmLogin(t, c.apiKey, "emma", direct.id, login.MethodEmail, direct.code), h.emma, "pwd otp mfa")
}

// testAPIOnlyWithLoginURL: the JSON API refuses the auth request of a client
// that signs in on stile's pages (it has no login page that could call the
// API), even from the browser bound to it; that browser's pages work.
func testAPIOnlyWithLoginURL(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	az := h.rp.authorize()
	p := h.passwordPage(t, b, az) // bound to b
	arID := p.url.Query().Get("authRequestID")
	r := h.call(t, "/login/api/authenticate", "", map[string]string{"authRequestID": arID, "username": "alice", "password": h.alice.password})
	expect(t, "the API on a pages client's request", r, http.StatusNotFound, string(login.CodeNotEnabled))
	code := h.signIn(t, b, az, h.alice)
	h.rp.idClaims(h.tokens(t, code, az), az.nonce)
}

// TestDoorsSeveralInstances: a ticket issued by one instance is refused to
// another browser by the other, and then dead on both; the bound browser's
// fresh ticket works across them (two instances over one PostgreSQL, every
// request to the next instance in turn).
func TestDoorsSeveralInstances(t *testing.T) {
	c := startCluster(t)
	h := c.h
	attacker := newBrowser(t, h.s)
	v, _ := h.apiLogin(t, attacker)
	refusedTicket(t, "another browser", newBrowser(t, h.s), v.str("redirectURI"), http.StatusForbidden)
	for range 2 { // once at each instance
		refusedTicket(t, "the burnt ticket in its own browser", attacker, v.str("redirectURI"), http.StatusGone)
	}
	h.s.clock.Advance(time.Minute)
	v, az := h.apiLogin(t, attacker)
	h.finishAPI(t, attacker, az, v)
}
