package main

import (
	"crypto/sha256"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
)

// Issue 9 items 7 and 8: changing a factor takes a code from an existing
// one, and an enrolment link belongs to the first browser that claims it.

func TestFactorProof(t *testing.T) {
	runHeadless(t, []hscenario{
		{"Authenticator", testFactorProofTOTP},
		{"EmailOnly", testFactorProofEmailOnly},
		{"NoFactor", testFactorProofNoFactor},
		{"Throttled", testFactorProofThrottled},
		{"EnrolmentLink", testEnrolmentLinkBinding},
		{"EnrolmentLinkThrottled", testEnrolmentLinkThrottled},
	})
}

func otpBody(code string) map[string]string { return map[string]string{"otp": code} }

// noPending fails if a refused call left a new authenticator to confirm.
func (h *hfixture) noPending(t *testing.T, what, userID string) {
	t.Helper()
	if _, err := h.s.db.PendingTOTP(t.Context(), userID); err == nil {
		t.Fatalf("%s left a new authenticator to confirm", what)
	}
}

// testFactorProofTOTP: alice (an authenticator app) cannot add a new one
// or make recovery codes without a current code or a recovery code — the
// attack was a stolen fresh token replacing her authenticator.
func testFactorProofTOTP(t *testing.T, h *hfixture) {
	alice := h.alice
	tok := h.mfaToken(t, newBrowser(t, h.s), alice, h.totpCode(t, alice)).AccessToken
	h.nextStep()
	right := h.totpOf(t, alice.totpSecret)
	expect(t, "a new authenticator without a code", h.mfa(t, http.MethodPost, "/totp", tok, nil), http.StatusBadRequest, string(login.CodeInvalidRequest))
	h.noPending(t, "a new authenticator without a code", alice.ID)
	expect(t, "a new authenticator with a wrong code", h.mfa(t, http.MethodPost, "/totp", tok, otpBody(wrongCode(right))),
		http.StatusForbidden, string(login.CodeInvalidOTP))
	h.noPending(t, "a new authenticator with a wrong code", alice.ID)
	expect(t, "recovery codes without a code", h.mfa(t, http.MethodPost, "/recovery-codes", tok, nil), http.StatusBadRequest, string(login.CodeInvalidRequest))
	expect(t, "recovery codes with a wrong code", h.mfa(t, http.MethodPost, "/recovery-codes", tok, otpBody(wrongCode(right))),
		http.StatusForbidden, string(login.CodeInvalidOTP))
	if left, _ := h.s.db.RecoveryCodesLeft(t.Context(), alice.ID); left != 0 || h.storedTOTP(t, alice.ID) != alice.totpSecret {
		t.Fatalf("refused calls changed alice's factors: %d recovery codes", left)
	}

	// Positive controls: a current code replaces the authenticator…
	add := h.mfa(t, http.MethodPost, "/totp", tok, otpBody(right))
	expect(t, "a new authenticator with a current code", add, http.StatusOK, "")
	secret := add.str("secret")
	expect(t, "confirm", h.mfa(t, http.MethodPost, "/totp/confirm", tok, otpBody(h.totpOf(t, secret))), http.StatusOK, "")
	if h.storedTOTP(t, alice.ID) != secret {
		t.Fatal("the confirmed authenticator is not alice's")
	}
	// …the replaced one's codes prove nothing any more, the new one's do…
	h.nextStep()
	expect(t, "recovery codes with the replaced app's code", h.mfa(t, http.MethodPost, "/recovery-codes", tok, otpBody(h.totpOf(t, alice.totpSecret))),
		http.StatusForbidden, string(login.CodeInvalidOTP))
	codes := h.mfa(t, http.MethodPost, "/recovery-codes", tok, otpBody(h.totpOf(t, secret)))
	expect(t, "recovery codes with a current code", codes, http.StatusOK, "")
	// …and so does a recovery code, spent.
	first := toStrings(codes.body["codes"])
	again := h.mfa(t, http.MethodPost, "/recovery-codes", tok, otpBody(first[0]))
	expect(t, "recovery codes with a recovery code", again, http.StatusOK, "")
	second := toStrings(again.body["codes"])
	expect(t, "a new authenticator with a replaced recovery code", h.mfa(t, http.MethodPost, "/totp", tok, otpBody(first[1])),
		http.StatusForbidden, string(login.CodeInvalidOTP))
	expect(t, "a new authenticator with a recovery code", h.mfa(t, http.MethodPost, "/totp", tok, otpBody(second[0])), http.StatusOK, "")
	if left, _ := h.s.db.RecoveryCodesLeft(t.Context(), alice.ID); left != 9 {
		t.Fatalf("%d recovery codes left, want 9", left)
	}
}

// testFactorProofEmailOnly: emma's only factor is an emailed code, which
// her sign-in (at most 10 minutes old) asked for: that is her proof. Once
// she has an authenticator, its codes are asked for.
func testFactorProofEmailOnly(t *testing.T, h *hfixture) {
	emma := h.emma
	mailed := func() string { return codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code")) }
	tok := h.mfaToken(t, newBrowser(t, h.s), emma, mailed).AccessToken
	add := h.mfa(t, http.MethodPost, "/totp", tok, nil)
	expect(t, "emma's first authenticator", add, http.StatusOK, "")
	secret := add.str("secret")
	expect(t, "confirm", h.mfa(t, http.MethodPost, "/totp/confirm", tok, otpBody(h.totpOf(t, secret))), http.StatusOK, "")
	expect(t, "recovery codes without a code, now", h.mfa(t, http.MethodPost, "/recovery-codes", tok, nil),
		http.StatusBadRequest, string(login.CodeInvalidRequest))
	h.nextStep()
	expect(t, "recovery codes with the new app's code", h.mfa(t, http.MethodPost, "/recovery-codes", tok, otpBody(h.totpOf(t, secret))),
		http.StatusOK, "")
}

// exemptToken signs an account exempt from the second factor in to "app"
// with the stile:mfa scope (password only) and returns the access token.
func (h *hfixture) exemptToken(t *testing.T, u *user) string {
	t.Helper()
	b := newBrowser(t, h.s)
	az := h.rp.authorize("scope", "openid "+op.ScopeMFA)
	loc := b.submit(h.passwordPage(t, b, az), map[string]string{"username": u.Username, "password": u.password}).location(t)
	return h.tokens(t, loc.Query().Get("code"), az).AccessToken
}

// testFactorProofNoFactor: a user with no factor at all has nothing to
// prove: the only exception. Recovery codes, once made, are a factor. An
// exempt account with an address on file signed in without its code, so it
// cannot use the step-up rule.
func testFactorProofNoFactor(t *testing.T, h *hfixture) {
	olga := h.userWith(t, "olga", func(u *storage.User) { u.OTPExempt, u.Email = true, "" })
	tok := h.exemptToken(t, olga)
	add := h.mfa(t, http.MethodPost, "/totp", tok, nil)
	expect(t, "a first authenticator without a code", add, http.StatusOK, "")
	codes := h.mfa(t, http.MethodPost, "/recovery-codes", tok, nil)
	expect(t, "first recovery codes without a code", codes, http.StatusOK, "")
	expect(t, "a new authenticator without a code, with recovery codes", h.mfa(t, http.MethodPost, "/totp", tok, nil),
		http.StatusBadRequest, string(login.CodeInvalidRequest))
	again := h.mfa(t, http.MethodPost, "/totp", tok, otpBody(toStrings(codes.body["codes"])[0]))
	expect(t, "a new authenticator with a recovery code", again, http.StatusOK, "")
	expect(t, "confirm", h.mfa(t, http.MethodPost, "/totp/confirm", tok, otpBody(h.totpOf(t, again.str("secret")))), http.StatusOK, "")

	otto := h.userWith(t, "otto", func(u *storage.User) { u.OTPExempt = true })
	expect(t, "an exempt account with an emailed factor", h.mfa(t, http.MethodPost, "/totp", h.exemptToken(t, otto), nil),
		http.StatusForbidden, string(login.CodeStepUpRequired))
	h.noPending(t, "an exempt account's call", otto.ID)
}

// testFactorProofThrottled: wrong proofs count against the account like
// any wrong code: they end in 429 with Retry-After, and then even the
// right code waits.
func testFactorProofThrottled(t *testing.T, h *hfixture) {
	tok := h.mfaToken(t, newBrowser(t, h.s), h.alice, h.totpCode(t, h.alice)).AccessToken
	h.nextStep()
	right := h.totpOf(t, h.alice.totpSecret)
	var r apiResult
	for i := 0; i < 30; i++ {
		if r = h.mfa(t, http.MethodPost, "/recovery-codes", tok, otpBody(wrongCode(right))); r.status != http.StatusForbidden {
			break
		}
	}
	if expect(t, "wrong proofs", r, http.StatusTooManyRequests, string(login.CodeThrottled)); r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	expect(t, "the right code during the lock", h.mfa(t, http.MethodPost, "/recovery-codes", tok, otpBody(right)),
		http.StatusTooManyRequests, string(login.CodeThrottled))
	if left, _ := h.s.db.RecoveryCodesLeft(t.Context(), h.alice.ID); left != 0 {
		t.Fatalf("a throttled call made %d recovery codes", left)
	}
}

// testEnrolmentLinkBinding: a cookieless client cannot claim an enrolment
// link (and sees no secret); once a browser claimed it, any other client,
// cookie or not, is refused and sees no secret; the first browser enrols.
// A link claimed without a binding before the fix shows its secret to
// nobody.
func testEnrolmentLinkBinding(t *testing.T, h *hfixture) {
	erin := h.s.addUser(t, "erin", false)
	link, _, err := account.NewEnrollmentLink(t.Context(), h.s.db, h.s.URL, erin.ID, time.Hour, h.s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	token := mustParse(t, link).Query().Get("token")
	cookieless := func(path string, form url.Values) (int, string) {
		t.Helper()
		resp, err := http.PostForm(h.s.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	noSecret := func(what string, status int, body string) {
		t.Helper()
		if status != http.StatusForbidden || strings.Contains(body, "otpauth") || strings.Contains(body, "data:image") {
			t.Fatalf("%s: %d, want 403 and no secret:\n%s", what, status, body)
		}
	}
	status, body := cookieless("/enroll", url.Values{"token": {token}, "password": {erin.password}})
	noSecret("a cookieless claim", status, body)

	b := newBrowser(t, h.s)
	secretPage := b.submit(b.get(link), map[string]string{"password": erin.password})
	if !strings.Contains(secretPage.body, "data:image/png;base64,") {
		t.Fatalf("the first browser sees no secret after a refused cookieless claim:\n%s", secretPage.body)
	}
	secret := secretOn(t, secretPage)
	c := newBrowser(t, h.s)
	if p := c.get(link); p.status != http.StatusForbidden {
		t.Fatalf("the claimed link in another browser: %d", p.status)
	}
	p := c.post(h.s.URL+"/enroll", url.Values{"token": {token}, "password": {erin.password}})
	noSecret("another browser's claim", p.status, p.body)
	p = c.post(h.s.URL+"/enroll/confirm", url.Values{"token": {token}, "otp": {h.totpOf(t, secret)}})
	noSecret("another browser's confirmation", p.status, p.body)
	status, body = cookieless("/enroll/confirm", url.Values{"token": {token}, "otp": {h.totpOf(t, secret)}})
	noSecret("a cookieless confirmation", status, body)
	if h.storedTOTP(t, erin.ID) != "" {
		t.Fatal("a refused confirmation enrolled the secret")
	}
	if r := b.submit(secretPage, map[string]string{"otp": h.totpOf(t, secret)}); r.status != http.StatusOK || !strings.Contains(r.body, "ready") {
		t.Fatalf("the first browser's confirmation: %d\n%s", r.status, r.body)
	}
	if h.storedTOTP(t, erin.ID) != secret {
		t.Fatal("the first browser's secret is not erin's")
	}

	// A link claimed with no binding, as a cookieless claim once did.
	link, _, err = account.NewEnrollmentLink(t.Context(), h.s.db, h.s.URL, h.nora.ID, time.Hour, h.s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(mustParse(t, link).Query().Get("token")))
	l, err := h.s.db.EnrollmentLinkByToken(t.Context(), sum[:])
	if err == nil {
		err = h.s.db.ClaimEnrollmentLink(t.Context(), l.ID, nil, []byte("sealed secret"))
	}
	if err != nil {
		t.Fatal(err)
	}
	d := newBrowser(t, h.s)
	if p := d.get(link); p.status != http.StatusForbidden {
		t.Fatalf("a link claimed without a binding: %d", p.status)
	}
	p = d.post(h.s.URL+"/enroll", url.Values{"token": {mustParse(t, link).Query().Get("token")}, "password": {h.nora.password}})
	noSecret("a link claimed without a binding", p.status, p.body)
}

// testEnrolmentLinkThrottled: wrong passwords on an enrolment link count
// like a sign-in's; the lock is a 429 page that says how long to wait, with
// Retry-After, even for the right password, and no secret; after the lock
// the right password shows it.
func testEnrolmentLinkThrottled(t *testing.T, h *hfixture) {
	fay := h.s.addUser(t, "fay", false)
	link, _, err := account.NewEnrollmentLink(t.Context(), h.s.db, h.s.URL, fay.ID, time.Hour, h.s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, h.s)
	form := b.get(link)
	for i := range 5 {
		if p := b.submit(form, map[string]string{"password": "not fay's password"}); p.status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i+1, p.status)
		}
	}
	p := b.submit(form, map[string]string{"password": fay.password})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Try again in") ||
		strings.Contains(p.body, "data:image") {
		t.Fatalf("the right password while locked: %d, Retry-After %q, want 429 with a wait and no secret:\n%s",
			p.status, p.header.Get("Retry-After"), p.body)
	}
	h.s.clock.Advance(31 * time.Second)
	if p := b.submit(form, map[string]string{"password": fay.password}); p.status != http.StatusOK || !strings.Contains(p.body, "data:image/png") {
		t.Fatalf("after the lock: %d\n%s", p.status, p.body)
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
