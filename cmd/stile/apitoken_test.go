package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The JSON API's loginToken: the forced-binding login CSRF that the ticket
// alone does not stop (doors.md, "Left alone"). The attacker opens his own
// auth request in the victim's browser, so that browser is the bound one,
// then signs in as himself through the API from his own machine and sends
// the victim's browser to the ticket. authenticate now needs the loginToken
// that /login gave only the page it sent the bound browser to.

func TestAPILoginToken(t *testing.T) {
	runHeadless(t, []hscenario{
		{"ForcedBinding", testForcedBinding},
		{"SameBrowserSameToken", testLoginTokenPerRequest},
	})
}

// forcedLogin is the attack's first half: the attacker starts an
// authorization for the custom client and stops at /login, which his own
// browser never opens; the victim's browser is made to open it (a link, a
// popup) and lands on the client's login page, bound. It returns the
// request ID, and the browser.
func (h *hfixture) forcedLogin(t *testing.T) (string, *browser) {
	t.Helper()
	u, _ := url.Parse(h.custom.authorize().url)
	attacker := newBrowser(t, h.s)
	attacker.noFollow = true
	login := attacker.get(h.s.URL + "/authorize?" + u.RawQuery).location(t)
	if login.Path != "/login" {
		t.Fatalf("/authorize sent the attacker to %s, want /login", login)
	}
	victim := newBrowser(t, h.s)
	return h.openLogin(t, victim, login.String()), victim
}

// testForcedBinding: the attacker (emma's credentials are his) calls
// authenticate on the request bound to the victim's browser without the
// loginToken, with a made-up one, with another request's and with the
// victim's altered: each is refused before any password is checked, with no
// transaction (no code mailed), and the victim's browser has nothing to
// redeem. Positive control: the victim's page, with the token it was given,
// signs in with the same credentials and the browser gets its tokens.
func testForcedBinding(t *testing.T, h *hfixture) {
	arID, victim := h.forcedLogin(t)
	token := h.loginToken(arID)
	// The attacker's own request, handed off to his own browser: its token is his.
	ownAR, _ := h.handoff(t, newBrowser(t, h.s))
	altered := []byte(token)
	altered[0] ^= 1
	for _, c := range []struct {
		what, token string
		status      int
		code        string
	}{
		{"no loginToken", "", http.StatusBadRequest, "invalid_request"},
		{"a made-up loginToken", "bm90IGEgdG9rZW4", http.StatusForbidden, "wrong_browser"},
		{"another request's loginToken", h.loginToken(ownAR), http.StatusForbidden, "wrong_browser"},
		{"the victim's loginToken, altered", string(altered), http.StatusForbidden, "wrong_browser"},
		{"the victim's loginToken, cut short", token[:len(token)-1], http.StatusForbidden, "wrong_browser"},
	} {
		verifies, mails := h.s.hasher.verifies.Load(), h.mail.count("emma@example.com")
		body := map[string]string{"authRequestID": arID, "username": "emma", "password": h.emma.password}
		if c.token != "" {
			body["loginToken"] = c.token
		}
		// From his own machine the attacker can send the registered Origin.
		r := h.call(t, "/login/api/authenticate", customOrigin, body)
		expect(t, c.what, r, c.status, c.code)
		if r.str("transactionID") != "" || r.str("redirectURI") != "" {
			t.Fatalf("%s: the refusal carried %v", c.what, r.body)
		}
		if n := h.s.hasher.verifies.Load() - verifies; n != 0 {
			t.Errorf("%s: %d passwords checked, want none", c.what, n)
		}
		if n := h.mail.count("emma@example.com") - mails; n != 0 {
			t.Errorf("%s: %d codes mailed: a transaction was opened", c.what, n)
		}
	}
	if !strings.Contains(h.s.logs.String(), "reason=\"wrong loginToken\"") || strings.Contains(h.s.logs.String(), token) {
		t.Error("a refused loginToken is not logged, or the token itself is")
	}
	if victim.cookie("stile_session") != nil {
		t.Fatal("the victim's browser holds a session")
	}

	// Positive control: the page the victim's browser was sent to passes
	// the loginToken beside authRequestID; the same credentials go through.
	verifies := h.s.hasher.verifies.Load()
	r := h.authenticate(t, arID, h.emma)
	expect(t, "authenticate with the page's loginToken", r, http.StatusOK, "")
	if h.s.hasher.verifies.Load() != verifies+1 {
		t.Error("the password was not checked once")
	}
	code := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	v := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": code})
	loc := victim.get(v.str("redirectURI")).location(t)
	if loc.Scheme+"://"+loc.Host+loc.Path != customRedirect || loc.Query().Get("code") == "" || victim.cookie("stile_session") == nil {
		t.Fatalf("the bound browser's ticket ended at %s", loc)
	}
}

// testLoginTokenPerRequest: the token is stateless but not shared. The
// same browser reopening /login for its request (a reload) gets the same
// one, and signs in with it; another request of the same browser gets
// another, which the first request refuses.
func testLoginTokenPerRequest(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	arID, az := h.handoff(t, b)
	first := h.loginToken(arID)
	if h.openLogin(t, b, h.s.URL+"/login?authRequestID="+url.QueryEscape(arID)) != arID || h.loginToken(arID) != first {
		t.Fatalf("reopening /login gave another loginToken: %q, then %q", first, h.loginToken(arID))
	}
	otherAR, _ := h.handoff(t, b)
	if h.loginToken(otherAR) == first {
		t.Fatal("two requests of one browser share a loginToken")
	}
	body := h.authBody(arID, "alice", h.alice.password)
	body["loginToken"] = h.loginToken(otherAR)
	expect(t, "the browser's other request's loginToken", h.call(t, "/login/api/authenticate", customOrigin, body),
		http.StatusForbidden, "wrong_browser")
	r := h.authenticate(t, arID, h.alice)
	h.finishAPI(t, b, az, h.call(t, "/login/api/verify", customOrigin,
		map[string]string{"transactionID": r.str("transactionID"), "otp": h.s.code(t, h.alice)}))
}
