package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stile-id/stile/storage"
)

const partnerRedirect = "https://partner.example.com/cb"

// partner registers a third-party client (consent required) that may use
// refresh tokens, and returns a relying party for it.
func (f *fixture) partner(t *testing.T) *relyingParty {
	t.Helper()
	secret := f.s.addClient(t, &storage.Client{ID: "partner", Name: "Partner App", Type: storage.ClientWeb,
		RedirectURIs: storage.Strings{partnerRedirect}, RequirePKCE: true,
		GrantTypes: storage.Strings{storage.GrantAuthorizationCode, storage.GrantRefreshToken}})
	return newRP(t, f.s, "partner", secret, partnerRedirect)
}

// consentPage signs in (or reuses the session) and lands on the consent page.
func (f *fixture) consentPage(t *testing.T, b *browser, az *authorization, fullLogin bool) *page {
	t.Helper()
	var p *page
	if fullLogin {
		p = b.submit(f.otpPage(t, b, az, f.alice), map[string]string{"otp": f.s.code(t, f.alice)})
	} else {
		p = b.get(az.url)
	}
	if p.status != http.StatusOK || p.url.Path != "/login/consent" {
		t.Fatalf("expected the consent page, got %s status %d:\n%s", p.url, p.status, p.body)
	}
	return p
}

// decide answers the consent page and returns where the client was sent.
func decide(t *testing.T, b *browser, p *page, decision string) *url.URL {
	t.Helper()
	return b.submit(p, map[string]string{"decision": decision}).location(t)
}

func testConsent(t *testing.T, f *fixture) {
	partner := f.partner(t)
	b := newBrowser(t, f.s)

	// First time: the page names the client and every scope it asks for.
	az := partner.authorize()
	p := f.consentPage(t, b, az, true)
	for _, want := range []string{"Partner App", "Know who you are", "See your email address"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	loc := decide(t, b, p, "allow")
	if _, err := partner.exchange(loc.Query().Get("code"), az.verifier); err != nil || loc.Query().Get("state") != az.state {
		t.Fatalf("after allowing: %s, %v", loc, err)
	}

	// Remembered: the next authorization (with the SSO session) asks nothing.
	az = partner.authorize()
	if loc := b.get(az.url).location(t); loc.Query().Get("code") == "" {
		t.Fatalf("remembered consent asked again: %s", loc)
	}
	// prompt=consent asks again; denying gives the client access_denied.
	p = f.consentPage(t, b, partner.authorize("prompt", "consent"), false)
	if loc := decide(t, b, p, "deny"); loc.Query().Get("error") != "access_denied" || loc.Query().Get("code") != "" {
		t.Fatalf("deny: %s", loc)
	}
	// A broader request than the consent asks again.
	f.consentPage(t, b, partner.authorize("scope", "openid profile email offline_access"), false)
	// prompt=none when consent is missing: consent_required, no page.
	other := partner.authorize("prompt", "none", "scope", "openid offline_access")
	if loc := b.get(other.url).location(t); loc.Query().Get("error") != "consent_required" {
		t.Fatalf("prompt=none without consent: %s", loc)
	}

	// The account page lists the consent; withdrawing it takes it back.
	acct := b.get(f.s.URL + "/account")
	if acct.status != http.StatusOK || !strings.Contains(acct.body, "partner") {
		t.Fatalf("account page: %d\n%s", acct.status, acct.body)
	}
	action, values := acct.formTo(t, "/account/consents/withdraw")
	if values.Get("clientID") != "partner" {
		t.Fatalf("account page form: %s %v", action, values)
	}
	b.post(acct.url.ResolveReference(action).String(), values)
	if acct = b.get(f.s.URL + "/account"); strings.Contains(acct.body, "partner") {
		t.Fatal("withdrawn consent still listed")
	}
	f.consentPage(t, b, partner.authorize(), false)

	// A first-party client never shows the page.
	az = f.rp.authorize()
	f.tokens(t, f.silent(t, b, az), az)

	// Signing out on the account page ends the session.
	if r := b.post(f.s.URL+"/account/signout", url.Values{}); r.status != http.StatusOK || !strings.Contains(r.body, "signed out") {
		t.Fatalf("sign out: %d", r.status)
	}
	f.passwordPage(t, b, f.rp.authorize())
	if r := b.get(f.s.URL + "/account"); r.status != http.StatusUnauthorized {
		t.Fatalf("account page without a session: %d", r.status)
	}
}

func testOfflineAccess(t *testing.T, f *fixture) {
	partner := f.partner(t)
	b := newBrowser(t, f.s)
	az := partner.authorize("scope", "openid offline_access")
	p := f.consentPage(t, b, az, true)
	if !strings.Contains(p.body, "Keep access while you are away") {
		t.Fatal("the consent page does not mention offline access")
	}
	loc := decide(t, b, p, "allow")
	tok, err := partner.exchange(loc.Query().Get("code"), az.verifier)
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("third party with consent to offline_access: refresh token %q, %v", tok.RefreshToken, err)
	}

	// A first-party client gets a refresh token without consent.
	az = f.rp.authorize("scope", "openid offline_access")
	if tok := f.tokens(t, f.silent(t, b, az), az); tok.RefreshToken == "" {
		t.Fatal("first-party client with offline_access got no refresh token")
	}
	// A client without the refresh_token grant: offline_access is ignored.
	secret := f.s.addClient(t, &storage.Client{ID: "plain", Type: storage.ClientWeb, FirstParty: true,
		RedirectURIs: storage.Strings{appRedirect}, RequirePKCE: true})
	plain := newRP(t, f.s, "plain", secret, appRedirect)
	az = plain.authorize("scope", "openid offline_access")
	code := f.silent(t, b, az)
	tok, err = plain.exchange(code, az.verifier)
	if err != nil || tok.RefreshToken != "" || strings.Contains(fmt.Sprint(tok.Extra("scope")), "offline_access") {
		t.Fatalf("client without the grant: refresh %q scope %v err %v", tok.RefreshToken, tok.Extra("scope"), err)
	}
}
