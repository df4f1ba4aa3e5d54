package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
)

// TestEnrolmentWithoutPassword: a user created without a password (as the
// management API creates them) gets an enrolment link that asks them to
// choose one, on stile's HTML forms over real HTTP, on SQLite and
// PostgreSQL.
func TestEnrolmentWithoutPassword(t *testing.T) {
	runHeadless(t, []hscenario{
		{"ChooseThenConfirm", testEnrolChoose},
		{"Abandoned", testEnrolAbandoned},
	})
}

// passwordless creates a user without a password and an enrolment link
// for them.
func (h *hfixture) passwordless(t *testing.T, name string) (*user, string) {
	t.Helper()
	u := &user{User: &storage.User{Username: name, Email: name + "@example.com"}}
	if err := h.s.db.CreateUser(t.Context(), u.User); err != nil {
		t.Fatal(err)
	}
	return u, h.enrolLink(t, u)
}

func (h *hfixture) enrolLink(t *testing.T, u *user) string {
	t.Helper()
	link, _, err := account.NewEnrollmentLink(t.Context(), h.s.db, h.s.URL, u.ID, time.Hour, h.s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return link
}

// storedHash is the user's password hash as stored now.
func (h *hfixture) storedHash(t *testing.T, id string) string {
	t.Helper()
	u, err := h.s.db.GetUser(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u.PasswordHash
}

func hasSecret(p *page) bool {
	return strings.Contains(p.body, "data:image/png") || strings.Contains(p.body, "otpauth")
}

// refused checks a page that must show no secret.
func refused(t *testing.T, what string, p *page, status int) {
	t.Helper()
	if p.status != status || hasSecret(p) {
		t.Fatalf("%s: %d (secret shown: %v), want %d and no secret:\n%s", what, p.status, hasSecret(p), status, p.body)
	}
}

// testEnrolChoose: the link asks for a new password twice; a weak or
// mismatched one is refused; the chosen one is not stored until the new
// authenticator is confirmed; another browser can neither see the secret
// nor set a password; the same browser, back on the link, must type the
// chosen password again; once confirmed, the link is spent and the user
// signs in with the password and the app.
func testEnrolChoose(t *testing.T, h *hfixture) {
	pat, link := h.passwordless(t, "pat")
	token := mustParse(t, link).Query().Get("token")
	chosen := "a passphrase pat chose"
	b := newBrowser(t, h.s)
	form := b.get(link)
	if form.status != http.StatusOK || !strings.Contains(form.body, "Choose a password") || !strings.Contains(form.body, `name="confirm"`) {
		t.Fatalf("the link's first page: %d\n%s", form.status, form.body)
	}
	p := b.submit(form, map[string]string{"password": "short", "confirm": "short"})
	refused(t, "a weak password", p, http.StatusBadRequest)
	if !strings.Contains(p.body, "at least 8") || !strings.Contains(p.body, `name="confirm"`) {
		t.Fatalf("a weak password: the form again with the rule, got:\n%s", p.body)
	}
	refused(t, "two different passwords", b.submit(form, map[string]string{"password": chosen, "confirm": chosen + "!"}), http.StatusBadRequest)
	if h.storedHash(t, pat.ID) != "" {
		t.Fatal("a refused choice stored a password")
	}
	secretPage := b.submit(form, map[string]string{"password": chosen, "confirm": chosen})
	if secretPage.status != http.StatusOK || !hasSecret(secretPage) {
		t.Fatalf("a good password: %d\n%s", secretPage.status, secretPage.body)
	}
	secret := secretOn(t, secretPage)
	if h.storedHash(t, pat.ID) != "" {
		t.Fatal("the password was stored before the authenticator was confirmed")
	}

	// Another browser, with the link: refused everywhere, and sets nothing.
	c := newBrowser(t, h.s)
	refused(t, "the claimed link in another browser", c.get(link), http.StatusForbidden)
	other := "the intruder's password"
	refused(t, "another browser's choice", c.post(h.s.URL+"/enroll", url.Values{"token": {token}, "password": {other}, "confirm": {other}}), http.StatusForbidden)
	refused(t, "another browser's confirmation", c.post(h.s.URL+"/enroll/confirm", url.Values{"token": {token}, "otp": {h.totpOf(t, secret)}}), http.StatusForbidden)
	if h.storedHash(t, pat.ID) != "" || h.storedTOTP(t, pat.ID) != "" {
		t.Fatal("another browser changed pat's account")
	}

	// The same browser back on the link: the chosen password, again.
	again := b.get(link)
	if again.status != http.StatusOK || !strings.Contains(again.body, "the password you chose") || strings.Contains(again.body, `name="confirm"`) {
		t.Fatalf("back on the link: %d\n%s", again.status, again.body)
	}
	refused(t, "not the chosen password", b.submit(again, map[string]string{"password": other}), http.StatusUnauthorized)
	back := b.submit(again, map[string]string{"password": chosen})
	if back.status != http.StatusOK || secretOn(t, back) != secret {
		t.Fatalf("the chosen password again: %d, want the same secret\n%s", back.status, back.body)
	}

	code := h.totpOf(t, secret)
	if r := b.submit(back, map[string]string{"otp": wrongCode(code)}); r.status != http.StatusForbidden || secretOn(t, r) != secret {
		t.Fatalf("a wrong code: %d", r.status)
	}
	mark := lastID(t, h.s)
	if r := b.submit(back, map[string]string{"otp": code}); r.status != http.StatusOK || !strings.Contains(r.body, "ready") {
		t.Fatalf("the right code: %d\n%s", r.status, r.body)
	}
	if ok, err := login.DefaultArgon2id.Verify(h.storedHash(t, pat.ID), chosen); !ok || err != nil {
		t.Fatalf("pat's stored password is not the chosen one: %v", err)
	}
	if h.storedTOTP(t, pat.ID) != secret {
		t.Fatal("pat's authenticator is not the one shown")
	}
	expectTrail(t, h.s, mark,
		want{typ: login.EventEnrollPassSet, outcome: storage.Success, user: pat.ID},
		want{typ: login.EventFactorEnrolled, outcome: storage.Success, user: pat.ID, detail: map[string]any{"via": "link", "method": login.MethodTOTP}})
	if strings.Contains(mustJSON(trail(t, h.s, 0)), chosen) {
		t.Fatal("the chosen password is in the trail")
	}

	// Spent: the link works for nobody now.
	refused(t, "the spent link", b.get(link), http.StatusGone)
	refused(t, "the spent link, another browser", c.get(link), http.StatusGone)
	refused(t, "the spent link posted", b.post(h.s.URL+"/enroll", url.Values{"token": {token}, "password": {other}, "confirm": {other}}), http.StatusGone)

	// Pat signs in with the chosen password and the app.
	pat.password, pat.totpSecret = chosen, secret
	h.nextStep() // the confirming code's step is spent
	d := newBrowser(t, h.s)
	h.signIn(t, d, h.rp.authorize(), pat)
}

// testEnrolAbandoned: a password chosen on a link that was never confirmed
// never becomes the user's; a new link (which ends the old one) lets the
// user choose afresh in another browser; and a user who has a password is
// asked for it, not for a new one (positive control of the new form).
func testEnrolAbandoned(t *testing.T, h *hfixture) {
	quinn, link := h.passwordless(t, "quinn")
	b := newBrowser(t, h.s)
	abandoned := "chosen then abandoned"
	if p := b.submit(b.get(link), map[string]string{"password": abandoned, "confirm": abandoned}); !hasSecret(p) {
		t.Fatalf("the first choice: %d", p.status)
	}
	fresh := h.enrolLink(t, quinn)
	refused(t, "the superseded link", b.get(link), http.StatusGone)
	c := newBrowser(t, h.s)
	final := "the password quinn keeps"
	p := c.submit(c.get(fresh), map[string]string{"password": final, "confirm": final})
	if !hasSecret(p) {
		t.Fatalf("the new link: %d\n%s", p.status, p.body)
	}
	if r := c.submit(p, map[string]string{"otp": h.totpOf(t, secretOn(t, p))}); r.status != http.StatusOK {
		t.Fatalf("confirm: %d", r.status)
	}
	hash := h.storedHash(t, quinn.ID)
	if ok, _ := login.DefaultArgon2id.Verify(hash, final); !ok {
		t.Fatal("quinn's password is not the one confirmed")
	}
	if ok, _ := login.DefaultArgon2id.Verify(hash, abandoned); ok {
		t.Fatal("the abandoned choice became quinn's password")
	}

	withPassword := h.s.addUser(t, "rae", false)
	form := b.get(h.enrolLink(t, withPassword))
	if form.status != http.StatusOK || strings.Contains(form.body, `name="confirm"`) || !strings.Contains(form.body, "Enter your password") {
		t.Fatalf("a user with a password: %d\n%s", form.status, form.body)
	}
	refused(t, "a new password for a user who has one", b.submit(form, map[string]string{"password": "a brand new password", "confirm": "a brand new password"}),
		http.StatusUnauthorized)
	if p := b.submit(form, map[string]string{"password": withPassword.password}); !hasSecret(p) {
		t.Fatalf("rae's own password: %d", p.status)
	}
}
