package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stile-id/stile/login"
)

var signupIDs = regexp.MustCompile(`value="[A-Za-z0-9_-]{43}"`)

// testSignupExistingEmail: signing up with the address of an account
// (in any letter case) answers exactly as for a new address; the owner is
// told by mail, with no code; no code finishes it, and no account is made.
func testSignupExistingEmail(t *testing.T, f *sfixture) {
	b := newBrowser(t, f.s)
	form, _ := f.signupForm(t, b, f.rp)
	fresh := f.startSignup(t, b, form, "walt", "walt@example.com", "walt's long passphrase")
	before := f.mail.count("alice@example.com")
	for _, addr := range []string{"alice@example.com", "Alice@Example.com"} {
		c := newBrowser(t, f.s)
		form, _ := f.signupForm(t, c, f.rp)
		taken := f.startSignup(t, c, form, "mallory", addr, "mallory's long passphrase")
		norm := func(p *page, addr string) string {
			return strings.ReplaceAll(signupIDs.ReplaceAllString(p.body, `value="ID"`), addr, "ADDRESS")
		}
		if a, w := norm(taken, addr), norm(fresh, "walt@example.com"); a != w || taken.status != fresh.status {
			t.Fatalf("the page for a taken address differs from a new one's:\n%s\n----\n%s", a, w)
		}
		for range 5 {
			if p := c.submit(taken, map[string]string{"otp": "123456"}); p.status != http.StatusForbidden && p.status != http.StatusGone {
				t.Fatalf("a code for the taken address: %d", p.status)
			}
		}
	}
	if n := f.mail.count("alice@example.com") - before; n != 2 {
		t.Fatalf("alice got %d mails, want a notice per attempt", n)
	}
	notice := f.mail.last(t, "alice@example.com", "tried to create an account")
	if strings.Contains(notice, "code") {
		t.Fatalf("the notice carries a code:\n%s", notice)
	}
	f.noUser(t, "after sign-ups with alice's address", "mallory", "")
	if u, _ := f.s.db.GetUserByEmail(t.Context(), "alice@example.com"); u.ID != f.alice.ID {
		t.Fatal("alice's address belongs to another account now")
	}
	// Positive control: the new address got a code that works.
	if p := b.submit(fresh, map[string]string{"otp": f.signupCode(t, "walt@example.com")}); !hasSecret(p) {
		t.Fatalf("the new address's code: %d", p.status)
	}
}

// testSignupUsernameTaken: a taken username is not said before the address
// is proven (the same code page); after it, the owner of the address
// chooses another, and the sign-up goes on with it.
func testSignupUsernameTaken(t *testing.T, f *sfixture) {
	b := newBrowser(t, f.s)
	form, az := f.signupForm(t, b, f.rp)
	step := f.startSignup(t, b, form, "ALICE", "vera@example.com", "vera's long passphrase")
	if strings.Contains(step.body, "taken") {
		t.Fatal("the code page says the username is taken")
	}
	ask := b.submit(step, map[string]string{"otp": f.signupCode(t, "vera@example.com")})
	if ask.status != http.StatusOK || !strings.Contains(ask.body, "That username is taken") || hasSecret(ask) {
		t.Fatalf("after the code: %d\n%s", ask.status, ask.body)
	}
	if p := b.submit(ask, map[string]string{"username": "alice"}); p.status != http.StatusBadRequest || !strings.Contains(p.body, "taken") {
		t.Fatalf("another taken name: %d", p.status)
	}
	secretPage := b.submit(ask, map[string]string{"username": "vera"})
	secret := secretOn(t, secretPage)
	code, _ := login.TOTPCode(secret, f.s.clock.Now())
	b.noFollow = true
	done := b.submit(secretPage, map[string]string{"otp": code})
	b.noFollow = false
	claims := landed(t, f.rp, b.get(done.location(t).String()), az)
	u, err := f.s.db.GetUserByUsername(t.Context(), "vera")
	if err != nil || claims["uid"] != u.ID || u.Email != "vera@example.com" {
		t.Fatalf("vera: %v, claims %v", err, claims)
	}
}
