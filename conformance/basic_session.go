package conformance

import (
	"net/url"
	"time"
)

// Modules about the provider's session: prompt, max_age, id_token_hint.

func promptLogin(m *M) {
	b := m.browser()
	_, first := m.happy(b, m.request(m.cfg.Client), true)
	m.cfg.Wait(time.Second)
	a := m.request(m.cfg.Client, "prompt", "login")
	r := m.authorize(b, a, false, false)
	if r.params != nil {
		m.Fatalf("prompt=login went straight back to the client: the user must be asked to log in again")
	}
	p, err := m.cfg.Login.Login(b, r.page)
	if err != nil {
		m.Fatalf("%v", err)
	}
	second := m.finish(p, a)
	m.check(second["sub"] == first["sub"], "sub %v after prompt=login, %v before", second["sub"], first["sub"])
	m.check(number(second["auth_time"]) > number(first["auth_time"]),
		"auth_time %v after prompt=login, not later than %v", second["auth_time"], first["auth_time"])
}

// finish takes the page a login ended on (a redirect to the client) to
// checked tokens, and returns the ID token's claims.
func (m *M) finish(p *Page, a *authz) map[string]any {
	loc := p.Location()
	if loc == nil {
		m.Fatalf("the login did not end at the client (status %d at %s)", p.Status, p.URL.Redacted())
	}
	t := m.exchange(a, m.codeFrom(response{params: loc.Query()}, a))
	return m.idToken(t.str("id_token"), a)
}

func promptNoneNotLoggedIn(m *M) {
	a := m.request(m.cfg.Client, "prompt", "none")
	r := m.authorize(m.browser(), a, false, false)
	if r.params == nil {
		m.Fatalf("prompt=none without a session showed a page (status %d) instead of answering the client", r.page.Status)
	}
	m.errorOrPage(r, a, "login_required", "interaction_required", "account_selection_required", "consent_required")
}

func promptNoneLoggedIn(m *M) {
	b := m.browser()
	_, first := m.happy(b, m.request(m.cfg.Client), true)
	a := m.request(m.cfg.Client, "prompt", "none")
	second := m.silent(b, a)
	m.check(second["sub"] == first["sub"], "sub %v with prompt=none, %v before", second["sub"], first["sub"])
	m.check(second["auth_time"] == first["auth_time"], "auth_time %v with prompt=none, %v before", second["auth_time"], first["auth_time"])
}

// silent runs an authorization that must complete without any page.
func (m *M) silent(b *Browser, a *authz) map[string]any {
	r := m.authorize(b, a, false, false)
	t := m.exchange(a, m.codeFrom(r, a))
	return m.idToken(t.str("id_token"), a)
}

func maxAge1(m *M) {
	b := m.browser()
	_, first := m.happy(b, m.request(m.cfg.Client), true)
	m.cfg.Wait(2 * time.Second)
	a := m.request(m.cfg.Client, "max_age", "1")
	r := m.authorize(b, a, false, false)
	if r.params != nil {
		m.Fatalf("max_age=1, two seconds after the login, did not ask to log in again")
	}
	p, err := m.cfg.Login.Login(b, r.page)
	if err != nil {
		m.Fatalf("%v", err)
	}
	second := m.finish(p, a)
	at, ok := second["auth_time"]
	if !ok {
		m.Fatalf("no auth_time in the ID token, though max_age was requested")
	}
	m.check(number(at) > number(first["auth_time"]), "auth_time %v after max_age=1, not later than %v", at, first["auth_time"])
	m.check(number(at) >= float64(m.cfg.Now().Add(-5*time.Minute).Unix()), "auth_time %v is not recent", at)
}

func maxAge10000(m *M) {
	b := m.browser()
	_, first := m.happy(b, m.request(m.cfg.Client, "max_age", "15000"), true)
	second := m.silent(b, m.request(m.cfg.Client, "max_age", "10000"))
	for _, id := range []map[string]any{first, second} {
		if _, ok := id["auth_time"]; !ok {
			m.Errorf("no auth_time in an ID token requested with max_age")
		}
	}
	m.check(second["sub"] == first["sub"], "sub %v, %v before", second["sub"], first["sub"])
	m.check(second["auth_time"] == first["auth_time"], "auth_time %v with max_age=10000, %v at the login",
		second["auth_time"], first["auth_time"])
}

func idTokenHint(m *M) {
	b := m.browser()
	t, first := m.happy(b, m.request(m.cfg.Client), true)
	second := m.silent(b, m.request(m.cfg.Client, "prompt", "none", "id_token_hint", t.str("id_token")))
	m.check(second["sub"] == first["sub"], "sub %v with the hint, %v before", second["sub"], first["sub"])
}

func acrValues(m *M) {
	_, id := m.happy(m.browser(), m.request(m.cfg.Client, "acr_values", "1 2"), true)
	if acr, ok := id["acr"].(string); ok && acr != "1" && acr != "2" {
		m.Warnf("acr %q is none of the requested acr_values", acr)
	}
}

// codeReuse redeems a code, waits, and redeems it again: the second must
// fail with invalid_grant, and should revoke what the first issued.
func codeReuse(m *M, wait time.Duration) {
	b := m.browser()
	a := m.request(m.cfg.Client)
	code := m.code(b, a, true)
	t := m.exchange(a, code)
	m.cfg.Wait(wait)
	again := m.token(a.client, formFor(a, code))
	m.check(again.status == 400, "second redemption of a code: status %d, want 400", again.status)
	m.check(again.str("error") == "invalid_grant", "second redemption of a code: error %q, want invalid_grant", again.str("error"))
	if status, _ := m.userinfo(t.str("access_token"), "get"); status == 200 && wait > 0 {
		m.Warnf("the access token from a code redeemed twice still works at userinfo")
	}
}

func formFor(a *authz, code string) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.client.RedirectURI}}
	if a.verifier != "" {
		f["code_verifier"] = []string{a.verifier}
	}
	return f
}
