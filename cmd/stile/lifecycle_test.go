package main

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/stile-id/stile/storage/storagetest"
)

// TestLifecycle covers what a provider must do after the first sign-in:
// SSO sessions, prompt and max_age, consent, refresh tokens, revocation,
// introspection, logout and account changes, on SQLite and PostgreSQL.
func TestLifecycle(t *testing.T) {
	scenarios := []struct {
		name string
		fn   func(*testing.T, *fixture)
	}{
		{"SSOSessionAndItsExpiry", testSSOSession},
		{"PromptLoginAndMaxAge", testPromptLoginAndMaxAge},
		{"PromptNoneWithSession", testPromptNoneWithSession},
		{"IDTokenHint", testIDTokenHint},
		{"LoginHint", testLoginHint},
		{"Consent", testConsent},
		{"OfflineAccess", testOfflineAccess},
		{"RefreshRotation", testRefresh},
		{"RefreshExpiry", testRefreshExpiry},
		{"RevocationAndIntrospection", testRevocationAndIntrospection},
		{"OpaqueAccessTokens", testOpaqueAccessTokens},
		{"LogoutWithHint", testLogoutWithHint},
		{"LogoutWithoutHint", testLogoutWithoutHint},
		{"AccountChangesRevoke", testAccountChangesRevoke},
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { sc.fn(t, newFixture(t, d.URL(t))) })
			}
		})
	}
}

// silent runs an authorization that must not show a login page: the
// browser goes straight back to the client with a code.
func (f *fixture) silent(t *testing.T, b *browser, az *authorization) string {
	t.Helper()
	p := b.get(az.url)
	loc := p.location(t)
	if loc.Scheme+"://"+loc.Host+loc.Path != appRedirect || loc.Query().Get("code") == "" {
		t.Fatalf("expected a silent sign-in, got %s (status %d) at %s", loc, p.status, p.url)
	}
	return loc.Query().Get("code")
}

// tokens signs in (or not, with an SSO session) and exchanges the code.
func (f *fixture) tokens(t *testing.T, code string, az *authorization) *oauth2.Token {
	t.Helper()
	tok, err := f.rp.exchange(code, az.verifier)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

// nextStep moves the clock to the next TOTP step, so the same user can
// complete another full sign-in.
func (f *fixture) nextStep() { f.s.clock.Advance(30 * time.Second) }

func authTime(claims map[string]any) int64 {
	v, _ := claims["auth_time"].(float64)
	return int64(v)
}

func testSSOSession(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	az := f.rp.authorize()
	first := f.rp.idClaims(f.tokens(t, f.signIn(t, b, az, f.alice), az), az.nonce)
	if b.cookie("stile_session") == nil {
		t.Fatal("no SSO cookie after the sign-in")
	}

	// Within the idle lifetime a second authorization skips both steps and
	// keeps the original auth_time.
	f.s.clock.Advance(20 * time.Minute)
	az = f.rp.authorize()
	again := f.rp.idClaims(f.tokens(t, f.silent(t, b, az), az), az.nonce)
	if again["sub"] != first["sub"] || authTime(again) != authTime(first) || again["sid"] != first["sid"] || first["sid"] == nil {
		t.Fatalf("reused session: sub %v→%v auth_time %v→%v sid %v→%v", first["sub"], again["sub"],
			authTime(first), authTime(again), first["sid"], again["sid"])
	}
	// The use restarted the idle lifetime; 31 idle minutes end the session.
	f.s.clock.Advance(25 * time.Minute)
	f.silent(t, b, f.rp.authorize())
	f.s.clock.Advance(31 * time.Minute)
	f.passwordPage(t, b, f.rp.authorize())

	// The absolute lifetime ends a session however busy it is.
	b = newBrowser(t, f.s)
	f.signIn(t, b, f.rp.authorize(), f.alice)
	for range 35 { // 35 × 20 min = 11 h 40 min, used all along
		f.s.clock.Advance(20 * time.Minute)
		f.silent(t, b, f.rp.authorize())
	}
	f.s.clock.Advance(21 * time.Minute) // 12 h 1 min
	f.passwordPage(t, b, f.rp.authorize())

	// A new sign-in issues a new session cookie.
	before := b.cookie("stile_session").Value
	f.signIn(t, b, f.rp.authorize(), f.alice)
	if after := b.cookie("stile_session").Value; after == before {
		t.Fatal("the session cookie was not replaced at sign-in")
	}
}

func testPromptLoginAndMaxAge(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	az := f.rp.authorize()
	first := f.rp.idClaims(f.tokens(t, f.signIn(t, b, az, f.alice), az), az.nonce)

	// prompt=login asks for both factors again, and auth_time moves.
	f.nextStep()
	az = f.rp.authorize("prompt", "login")
	relogin := f.rp.idClaims(f.tokens(t, f.signIn(t, b, az, f.alice), az), az.nonce)
	if authTime(relogin) <= authTime(first) {
		t.Fatalf("prompt=login: auth_time %d, want later than %d", authTime(relogin), authTime(first))
	}

	// max_age older than the session asks again; a generous one does not.
	f.s.clock.Advance(2 * time.Second)
	az = f.rp.authorize("max_age", "10000")
	kept := f.rp.idClaims(f.tokens(t, f.silent(t, b, az), az), az.nonce)
	if authTime(kept) != authTime(relogin) {
		t.Fatalf("max_age=10000: auth_time %d, want the session's %d", authTime(kept), authTime(relogin))
	}
	f.nextStep()
	az = f.rp.authorize("max_age", "1")
	fresh := f.rp.idClaims(f.tokens(t, f.signIn(t, b, az, f.alice), az), az.nonce)
	if authTime(fresh) <= authTime(relogin) {
		t.Fatalf("max_age=1: auth_time %d, want later than %d", authTime(fresh), authTime(relogin))
	}
}

func testPromptNoneWithSession(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	f.signIn(t, b, f.rp.authorize(), f.alice)
	az := f.rp.authorize("prompt", "none")
	f.tokens(t, f.silent(t, b, az), az)
	other := newBrowser(t, f.s)
	if loc := other.get(f.rp.authorize("prompt", "none").url).location(t); loc.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none in a browser without a session: %s", loc)
	}
}

func testIDTokenHint(t *testing.T, f *fixture) {
	bob := f.s.addUser(t, "bob", true)
	bobBrowser := newBrowser(t, f.s)
	az := f.rp.authorize()
	bobToken := f.tokens(t, f.signIn(t, bobBrowser, az, bob), az)
	bobHint, _ := bobToken.Extra("id_token").(string)

	b := newBrowser(t, f.s)
	az = f.rp.authorize()
	aliceToken := f.tokens(t, f.signIn(t, b, az, f.alice), az)
	aliceHint, _ := aliceToken.Extra("id_token").(string)

	// Alice's session never answers silently for a hint naming Bob.
	loc := b.get(f.rp.authorize("prompt", "none", "id_token_hint", bobHint).url).location(t)
	if loc.Query().Get("error") != "login_required" || loc.Query().Get("code") != "" {
		t.Fatalf("prompt=none with another user's hint: %s", loc)
	}
	// Without prompt=none, the hint for Bob asks for a login.
	f.passwordPage(t, b, f.rp.authorize("id_token_hint", bobHint))
	// Her own hint completes silently.
	az = f.rp.authorize("prompt", "none", "id_token_hint", aliceHint)
	if claims := f.rp.idClaims(f.tokens(t, f.silent(t, b, az), az), az.nonce); claims["sub"] != f.alice.ID {
		t.Fatalf("sub %v, want alice", claims["sub"])
	}
	// A hint that does not verify is login_required.
	loc = b.get(f.rp.authorize("prompt", "none", "id_token_hint", aliceHint+"x").url).location(t)
	if loc.Query().Get("error") != "login_required" {
		t.Fatalf("tampered hint: %s", loc)
	}
}

func testLoginHint(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	p := f.passwordPage(t, b, f.rp.authorize("login_hint", "alice@example.com"))
	_, values := p.form(t)
	if values.Get("username") != "alice@example.com" {
		t.Fatalf("username prefilled with %q, want the login_hint", values.Get("username"))
	}
	if p = f.passwordPage(t, b, f.rp.authorize()); strings.Contains(p.body, "alice@example.com") {
		t.Fatal("username prefilled without a login_hint")
	}
}
