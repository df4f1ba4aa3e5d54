package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func testLogoutWithHint(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	tokens := f.offlineIn(t, b)
	hint := tokens["id_token"].(string)

	// An unregistered post_logout_redirect_uri: an error page, no redirect, nothing ended.
	bad := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example.com/"}}
	if p := b.get(f.s.URL + "/end_session?" + bad.Encode()); p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
		t.Fatalf("unregistered post_logout_redirect_uri: %d Location %q", p.status, p.header.Get("Location"))
	}
	f.silent(t, b, f.rp.authorize()) // still signed in

	q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {appSignedOut}, "state": {"s-123"}}
	loc := b.get(f.s.URL + "/end_session?" + q.Encode()).location(t)
	if loc.Scheme+"://"+loc.Host+loc.Path != appSignedOut || loc.Query().Get("state") != "s-123" {
		t.Fatalf("logout redirected to %s", loc)
	}
	// The session and its refresh token ended.
	f.passwordPage(t, b, f.rp.authorize())
	if status, _ := f.refresh(t, tokens["refresh_token"].(string), "app", f.secret); status != http.StatusBadRequest {
		t.Fatalf("refresh after logout: %d", status)
	}
	// Without post_logout_redirect_uri the user lands on stile's own page.
	f.nextStep()
	other := newBrowser(t, f.s)
	hint2 := f.offlineIn(t, other)["id_token"].(string)
	p := other.get(f.s.URL + "/end_session?" + url.Values{"id_token_hint": {hint2}}.Encode())
	if p.url.Path != "/signed-out" || !strings.Contains(p.body, "signed out") {
		t.Fatalf("logout without a redirect: %s %d", p.url, p.status)
	}
	f.passwordPage(t, other, f.rp.authorize())
}

func testLogoutWithoutHint(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	f.offlineIn(t, b)
	q := url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {appSignedOut}, "state": {"s-9"}}
	p := b.get(f.s.URL + "/end_session?" + q.Encode())
	if p.status != http.StatusOK || !strings.Contains(p.body, "Sign out?") {
		t.Fatalf("logout without a hint: %d\n%s", p.status, p.body)
	}
	// Nothing has ended yet: the session still signs in silently.
	f.silent(t, b, f.rp.authorize())
	// A forged confirmation from another site is refused.
	action, values := p.form(t)
	target := p.url.ResolveReference(action).String()
	if r := b.post(target, values, "Origin", "https://evil.example.com", "Sec-Fetch-Site", "cross-site"); r.header.Get("Location") != "" || r.status == http.StatusFound {
		t.Fatalf("cross-site confirmation: %d %q", r.status, r.header.Get("Location"))
	}
	f.silent(t, b, f.rp.authorize())
	// The user's own confirmation ends the session.
	loc := b.submit(p, nil).location(t)
	if loc.Scheme+"://"+loc.Host+loc.Path != appSignedOut || loc.Query().Get("state") != "s-9" {
		t.Fatalf("after confirming: %s", loc)
	}
	f.passwordPage(t, b, f.rp.authorize())
}

// offlineIn signs alice in to "app" in browser b with offline_access.
func (f *fixture) offlineIn(t *testing.T, b *browser) map[string]any {
	t.Helper()
	az := f.rp.authorize("scope", "openid offline_access")
	code := f.signIn(t, b, az, f.alice)
	resp, body := rawToken(t, f.s, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {appRedirect}, "code_verifier": {az.verifier}}, "app", f.secret)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("exchange: %d %v", resp.StatusCode, body)
	}
	return body
}

// testAccountChangesRevoke: disabling a user, setting their password or
// resetting their second factor (with the CLI, while the server runs) ends
// their sessions and revokes their tokens.
func testAccountChangesRevoke(t *testing.T, f *fixture) {
	changes := []struct {
		name string
		do   func()
		undo func()
	}{
		{"disable", func() { f.s.stile(t, "user", "disable", "alice") }, func() { f.s.stile(t, "user", "enable", "alice") }},
		{"set-password", func() { f.s.stileIn(t, f.alice.password+"\n", "user", "set-password", "alice", "--password-stdin") }, func() {}},
		{"reset-otp", func() { f.s.stile(t, "user", "reset-otp", "alice") }, func() {
			var e map[string]string
			jsonInto(t, f.s.stile(t, "user", "totp", "alice", "--json"), &e)
			f.alice.totpSecret = e["secret"]
		}},
	}
	for _, c := range changes {
		f.nextStep()
		b := newBrowser(t, f.s)
		tokens := f.offlineIn(t, b)
		access, rt := tokens["access_token"].(string), tokens["refresh_token"].(string)
		if f.introspect(t, access, "app", f.secret)["active"] != true {
			t.Fatalf("%s: token inactive before the change", c.name)
		}
		c.do()
		if got := f.introspect(t, access, "app", f.secret); got["active"] != false {
			t.Errorf("%s: access token still active: %v", c.name, got)
		}
		if status, _ := f.refresh(t, rt, "app", f.secret); status != http.StatusBadRequest {
			t.Errorf("%s: refresh still works: %d", c.name, status)
		}
		if p := b.get(f.rp.authorize().url); p.url.Path != "/login" {
			t.Errorf("%s: the SSO session survived: %s", c.name, p.url)
		}
		c.undo()
	}
	f.nextStep()
	f.offlineIn(t, newBrowser(t, f.s)) // after the changes are undone, alice signs in again
}
