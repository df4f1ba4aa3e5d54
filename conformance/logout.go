package conformance

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
)

// The RP-initiated logout plan (OpenID Connect RP-Initiated Logout 1.0):
// 11 modules around the end_session_endpoint.
func init() {
	l := func(name string, run func(*M)) { register(PlanLogout, "oidcc-rp-initiated-logout"+name, run) }
	l("", func(m *M) { m.logout(hintURIState, wantRedirect("state")) })
	l("-bad-id-token-hint", func(m *M) { m.logout(badHint(tamperSignature), wantNoRedirect) })
	l("-modified-id-token-hint", func(m *M) { m.logout(badHint(tamperPayload), wantNoRedirect) })
	l("-bad-post-logout-redirect-uri", func(m *M) {
		m.logout(func(m *M, hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example.com/logout"}, "state": {"s"}}
		}, wantNoRedirect)
	})
	l("-query-added-to-post-logout-redirect-uri", func(m *M) {
		m.logout(func(m *M, hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {m.cfg.Client.PostLogoutRedirectURI + "?foo=bar"}}
		}, wantNoRedirect)
	})
	l("-no-id-token-hint", func(m *M) {
		m.logout(func(m *M, _ string) url.Values {
			return url.Values{"client_id": {m.cfg.Client.ID}, "post_logout_redirect_uri": {m.cfg.Client.PostLogoutRedirectURI}, "state": {"s-1"}}
		}, wantRedirect("state"))
	})
	l("-no-params", func(m *M) { m.logout(func(*M, string) url.Values { return url.Values{} }, wantLoggedOutOnProvider) })
	l("-no-post-logout-redirect-uri", func(m *M) {
		m.logout(func(_ *M, hint string) url.Values { return url.Values{"id_token_hint": {hint}} }, wantLoggedOutOnProvider)
	})
	l("-no-state", func(m *M) {
		m.logout(func(m *M, hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {m.cfg.Client.PostLogoutRedirectURI}}
		}, wantRedirect(""))
	})
	l("-only-state", func(m *M) {
		m.logout(func(*M, string) url.Values { return url.Values{"state": {"s-2"}} }, wantLoggedOutOnProvider)
	})
	l("-discovery-endpoint-verification", func(m *M) {
		m.verifyDiscovery()
		m.check(strings.HasPrefix(m.endpoint("end_session_endpoint"), "https://"), "end_session_endpoint is not https")
	})
}

func hintURIState(m *M, hint string) url.Values {
	return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {m.cfg.Client.PostLogoutRedirectURI}, "state": {"s-0"}}
}

// logout signs in, sends the logout request that params builds from the
// ID token, lets the user confirm on any page the provider shows, and
// judges the outcome with want.
func (m *M) logout(params func(m *M, hint string) url.Values, want func(m *M, b *Browser, q url.Values, p *Page)) {
	b := m.browser()
	t, _ := m.happy(b, m.request(m.cfg.Client), true)
	q := params(m, t.str("id_token"))
	p, err := b.Get(m.endpoint("end_session_endpoint") + "?" + q.Encode())
	if err != nil {
		m.Fatalf("logout request: %v", err)
	}
	want(m, b, q, p)
}

// toClient reports whether the provider sent the browser to a post-logout
// redirect URI.
func (m *M) toClient(p *Page) (*url.URL, bool) {
	loc := p.Location()
	return loc, loc != nil && strings.HasPrefix(loc.String(), strings.SplitN(m.cfg.Client.PostLogoutRedirectURI, "?", 2)[0])
}

// confirm submits the provider's confirmation form, if its page has one.
func (m *M) confirm(b *Browser, p *Page) *Page {
	if _, ok := p.Form(); !ok || p.Location() != nil {
		return p
	}
	next, err := b.Submit(p, nil)
	if err != nil {
		m.Fatalf("confirming the logout: %v", err)
	}
	return next
}

// wantRedirect: after the user confirms if asked, the browser reaches the
// post_logout_redirect_uri, with state when one was sent, and the session
// is over.
func wantRedirect(stateParam string) func(*M, *Browser, url.Values, *Page) {
	return func(m *M, b *Browser, q url.Values, p *Page) {
		p = m.confirm(b, p)
		loc, ok := m.toClient(p)
		if !ok {
			m.Fatalf("the logout did not return to the post_logout_redirect_uri (status %d at %s)", p.Status, p.URL.Redacted())
		}
		want := q.Get("state")
		m.check(loc.Query().Get("state") == want, "state %q after logout, want %q", loc.Query().Get("state"), want)
		if stateParam == "" {
			m.check(!loc.Query().Has("state"), "a state parameter was added though none was sent")
		}
		m.loggedOut(b)
	}
}

// wantNoRedirect: an invalid request must not send the browser anywhere
// it names; the provider shows an error instead.
func wantNoRedirect(m *M, _ *Browser, _ url.Values, p *Page) {
	if loc, ok := m.toClient(p); ok {
		m.Fatalf("the provider redirected to %s for an invalid logout request", loc.Redacted())
	}
	if loc := p.Location(); loc != nil && strings.HasPrefix(loc.String(), "https://evil.example.com") {
		m.Fatalf("the provider redirected to the unregistered %s", loc.Redacted())
	}
}

// wantLoggedOutOnProvider: no client to return to; after the user confirms
// if asked, the provider shows its own page and the session is over.
func wantLoggedOutOnProvider(m *M, b *Browser, _ url.Values, p *Page) {
	p = m.confirm(b, p)
	if loc, ok := m.toClient(p); ok {
		m.Fatalf("the provider redirected to %s without a verified request", loc.Redacted())
	}
	m.check(p.Status < 400, "logout ended with status %d", p.Status)
	m.loggedOut(b)
}

// loggedOut checks the session is over: prompt=none must not sign in.
func (m *M) loggedOut(b *Browser) {
	a := m.request(m.cfg.Client, "prompt", "none")
	r := m.authorize(b, a, false, false)
	if r.params != nil && r.params.Get("code") != "" {
		m.Errorf("after the logout, prompt=none still signs the user in")
	}
}

func badHint(tamper func(string) string) func(*M, string) url.Values {
	return func(m *M, hint string) url.Values { return hintURIState(m, tamper(hint)) }
}

// tamperSignature breaks the JWT's signature.
func tamperSignature(jwt string) string {
	parts := strings.Split(jwt, ".")
	sig := []byte(parts[2])
	sig[len(sig)/2] ^= 0x01
	if sig[len(sig)/2] == '.' {
		sig[len(sig)/2] = 'A'
	}
	return parts[0] + "." + parts[1] + "." + string(sig)
}

// tamperPayload changes the sub of the JWT, keeping its signature.
func tamperPayload(jwt string) string {
	parts := strings.Split(jwt, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	json.Unmarshal(raw, &claims)
	claims["sub"] = "someone-else"
	b, _ := json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}
