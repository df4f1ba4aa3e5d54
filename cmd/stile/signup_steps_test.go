package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
)

// testSignupResend: a new code waits out the cooldown, replaces the old
// one, and finishes the sign-up; on a third-party client the new account
// is asked for consent before the client gets its code.
func testSignupResend(t *testing.T, f *sfixture) {
	third := newRP(t, f.s, "third", f.s.addClient(t, &storage.Client{ID: "third", Name: "Third", Type: storage.ClientWeb,
		RedirectURIs: storage.Strings{"https://third.example.com/cb"}, RequirePKCE: true, Signup: true, Audiences: storage.Strings{apiAudience},
		GrantTypes: storage.Strings{storage.GrantAuthorizationCode}}), "https://third.example.com/cb")
	b := newBrowser(t, f.s)
	form, az := f.signupForm(t, b, third)
	step := f.startSignup(t, b, form, "rob", "rob@example.com", "rob's long passphrase")
	old := f.signupCode(t, "rob@example.com")
	id := formValue(t, step, "signupID")
	resend := func() *page { return b.post(f.s.URL+"/login/signup/resend", url.Values{"signupID": {id}}) }
	if p := resend(); p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || f.mail.count("rob@example.com") != 1 {
		t.Fatalf("a resend inside the cooldown: %d", p.status)
	}
	code := old
	for range 3 { // again in the one-in-a-million case that the new code is the old
		f.s.clock.Advance(31 * time.Second)
		if p := resend(); p.status != http.StatusOK || !strings.Contains(p.body, "We sent a 6-digit code") {
			t.Fatalf("a resend after the cooldown: %d", p.status)
		}
		if code = f.signupCode(t, "rob@example.com"); code != old {
			break
		}
	}
	if p := b.submit(step, map[string]string{"otp": old}); p.status != http.StatusForbidden {
		t.Fatalf("the replaced code: %d", p.status)
	}
	secretPage := b.submit(step, map[string]string{"otp": code})
	totp, _ := login.TOTPCode(secretOn(t, secretPage), f.s.clock.Now())
	consent := b.submit(secretPage, map[string]string{"otp": totp})
	if consent.status != http.StatusOK || consent.url.Path != "/login/consent" {
		t.Fatalf("a third-party client after sign-up: %d at %s", consent.status, consent.url)
	}
	b.noFollow = true
	allowed := b.submit(consent, map[string]string{"decision": "allow"})
	b.noFollow = false
	u, err := f.s.db.GetUserByUsername(t.Context(), "rob")
	if err != nil || landed(t, third, b.get(allowed.location(t).String()), az)["uid"] != u.ID {
		t.Fatalf("rob's tokens: %v", err)
	}
}

// testSignupUsernameRace: two sign-ups chose the same free username; the
// first to finish gets it, the second is sent back, after its own
// authenticator code, to choose another, and finishes with that.
func testSignupUsernameRace(t *testing.T, f *sfixture) {
	start := func(email string) (*browser, *page, *authorization) {
		b := newBrowser(t, f.s)
		form, az := f.signupForm(t, b, f.rp)
		step := f.startSignup(t, b, form, "quin", email, "a long passphrase")
		return b, b.submit(step, map[string]string{"otp": f.signupCode(t, email)}), az
	}
	b1, s1, _ := start("quin1@example.com")
	b2, s2, az2 := start("quin2@example.com")
	code := func(p *page) string { c, _ := login.TOTPCode(secretOn(t, p), f.s.clock.Now()); return c }
	b1.noFollow = true
	if p := b1.submit(s1, map[string]string{"otp": code(s1)}); p.location(t).Path != "/authorize/callback" {
		t.Fatalf("the first: %d", p.status)
	}
	ask := b2.submit(s2, map[string]string{"otp": code(s2)})
	if ask.status != http.StatusOK || !strings.Contains(ask.body, "That username is taken") {
		t.Fatalf("the second, its username taken meanwhile: %d\n%s", ask.status, ask.body)
	}
	if u, _ := f.s.db.GetUserByEmail(t.Context(), "quin2@example.com"); u != nil {
		t.Fatal("the second sign-up made an account")
	}
	again := b2.submit(ask, map[string]string{"username": "quin2"})
	b2.noFollow = true
	done := b2.submit(again, map[string]string{"otp": code(again)})
	b2.noFollow = false
	if landed(t, f.rp, b2.get(done.location(t).String()), az2)["uid"] == nil {
		t.Fatal("no uid")
	}
	if u, err := f.s.db.GetUserByUsername(t.Context(), "quin2"); err != nil || u.Email != "quin2@example.com" {
		t.Fatalf("quin2: %v", err)
	}
}
