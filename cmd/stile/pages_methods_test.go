package main

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/stile-id/stile/conformance"
	"github.com/stile-id/stile/storage"
)

// TestLoginPagesMethods signs in through stile's own HTML pages — not the
// JSON API — with the second-factor methods other than TOTP: an emailed
// code (and its resend button), a texted code, a recovery code typed into
// the code form, and the enrolment policies for a user without a second
// factor. On SQLite and PostgreSQL, with a real SMTP server and SMS webhook.
func TestLoginPagesMethods(t *testing.T) {
	runHeadless(t, []hscenario{
		{"Email", testPagesEmail},
		{"EmailResend", testPagesEmailResend},
		{"SMS", testPagesSMS},
		{"Recovery", testPagesRecovery},
		{"EnrolEmailThenTOTP", testPagesEnrolEmailThenTOTP},
		{"RefusePolicy", testPagesRefuse},
	})
}

// pagesClient registers a client "pages" that uses stile's own login pages
// (no login_url), with the enrolment policy given ("" for the default),
// and returns a relying party for it.
func (h *hfixture) pagesClient(t *testing.T, policy string) *relyingParty {
	t.Helper()
	secret := h.s.addClient(t, &storage.Client{ID: "pages", Name: "Pages App", Type: storage.ClientWeb, FirstParty: true,
		RedirectURIs: storage.Strings{appRedirect}, RequirePKCE: true, EnrollmentPolicy: policy})
	return newRP(t, h.s, "pages", secret, appRedirect)
}

// submitForm submits the page's form whose action is action (browser.submit
// takes the first form; the code page's resend button is in the second).
func (b *browser) submitForm(p *page, action string, fields map[string]string) *page {
	b.t.Helper()
	f := formTo(p, action)
	if f == nil {
		b.t.Fatalf("no form to %s on %s (status %d):\n%s", action, p.url, p.status, p.body)
	}
	for k, v := range fields {
		f.Values.Set(k, v)
	}
	b.b.NoFollow = b.noFollow
	return b.wrap(b.b.Post(p.url.ResolveReference(f.Action).String(), f.Values))
}

// formTo is the page's form posting to action, or nil.
func formTo(p *page, action string) *conformance.Form {
	for _, f := range p.Forms() {
		if f.Action.String() == action {
			return f
		}
	}
	return nil
}

func hasForm(p *page, action string) bool { return formTo(p, action) != nil }

// showsSecret reports whether a page carries enrolment material.
func showsSecret(p *page) bool {
	return strings.Contains(p.body, `id="secret"`) || strings.Contains(p.body, "data:image") || strings.Contains(p.body, "otpauth")
}

// signedInAs exchanges the code the browser was sent back with and checks
// the ID token is for u with this amr.
func signedInAs(t *testing.T, rp *relyingParty, az *authorization, loc *url.URL, u *user, amr string) {
	t.Helper()
	if loc.Query().Get("state") != az.state || loc.Query().Get("code") == "" {
		t.Fatalf("redirected to %s, want a code with the request's state", loc)
	}
	tok, err := rp.exchange(loc.Query().Get("code"), az.verifier)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.AccessToken == "" {
		t.Fatal("no access token")
	}
	claims := rp.idClaims(tok, az.nonce)
	if claims["sub"] != u.ID || strings.Join(toStrings(claims["amr"]), " ") != amr {
		t.Fatalf("ID token sub %v amr %v, want %s and %q", claims["sub"], claims["amr"], u.ID, amr)
	}
}

func testPagesEmail(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	az := h.rp.authorize()
	p := h.otpPage(t, b, az, h.emma)
	if !strings.Contains(p.body, "We sent a 6-digit code to e•••@example.com") || strings.Contains(p.body, "emma@example.com") {
		t.Fatalf("the code page does not name the masked address:\n%s", p.body)
	}
	if !hasForm(p, "/login/otp/resend") || showsSecret(p) {
		t.Fatalf("an email code page: want a resend button and no enrolment material:\n%s", p.body)
	}
	code := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	if n := h.mail.count("emma@example.com"); n != 1 {
		t.Fatalf("%d mails to emma, want the one code", n)
	}
	wrong := b.submit(p, map[string]string{"otp": wrongCode(code)})
	if wrong.status != http.StatusForbidden || !strings.Contains(wrong.body, "not right") || !hasForm(wrong, "/login/otp") {
		t.Fatalf("a wrong emailed code: status %d:\n%s", wrong.status, wrong.body)
	}
	signedInAs(t, h.rp, az, h.finish(t, b, wrong, code), h.emma, "pwd otp mfa")
	// The code was spent with the transaction.
	if again := b.submit(wrong, map[string]string{"otp": code}); again.status != http.StatusGone {
		t.Fatalf("the used code again: status %d, want 410", again.status)
	}

	// An emailed code stops working after its 5 minutes.
	b = newBrowser(t, h.s)
	p = h.otpPage(t, b, h.rp.authorize(), h.emma)
	code = codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	h.s.clock.Advance(5*time.Minute + time.Second)
	if r := b.submit(p, map[string]string{"otp": code}); r.status != http.StatusForbidden || !strings.Contains(r.body, "not right") {
		t.Fatalf("an expired emailed code: status %d:\n%s", r.status, r.body)
	}
}

func testPagesEmailResend(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	az := h.rp.authorize()
	p := h.otpPage(t, b, az, h.emma)
	first := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))

	// Before the 30-second cooldown the button is refused, saying why, and
	// nothing is sent.
	early := b.submitForm(p, "/login/otp/resend", nil)
	if early.status != http.StatusTooManyRequests || !strings.Contains(early.body, "A code was just sent. Wait a little before asking for another.") {
		t.Fatalf("resend before the cooldown: status %d:\n%s", early.status, early.body)
	}
	if ra, err := strconv.Atoi(early.header.Get("Retry-After")); err != nil || ra < 1 || ra > 30 {
		t.Fatalf("resend before the cooldown: Retry-After %q, want 1-30 s", early.header.Get("Retry-After"))
	}
	if !hasForm(early, "/login/otp") || !hasForm(early, "/login/otp/resend") {
		t.Fatalf("the refusal does not keep the code form and the button:\n%s", early.body)
	}
	if n := h.mail.count("emma@example.com"); n != 1 {
		t.Fatalf("an early resend sent mail: %d mails, want 1", n)
	}
	h.s.clock.Advance(29 * time.Second)
	if r := b.submitForm(early, "/login/otp/resend", nil); r.status != http.StatusTooManyRequests || h.mail.count("emma@example.com") != 1 {
		t.Fatalf("resend after 29 s: status %d, %d mails; want 429 and still 1", r.status, h.mail.count("emma@example.com"))
	}

	// After the cooldown a new code is sent; it replaces the old one. (Ask
	// again in the one-in-a-million case that both codes are the same.)
	second, page := first, early
	for mails := 2; second == first; mails++ {
		if mails > 4 {
			t.Fatal("three new codes all equal the first")
		}
		h.s.clock.Advance(31 * time.Second)
		page = b.submitForm(page, "/login/otp/resend", nil)
		if page.status != http.StatusOK || !strings.Contains(page.body, "A new code is on its way. The earlier one no longer works.") {
			t.Fatalf("resend after the cooldown: status %d:\n%s", page.status, page.body)
		}
		if n := h.mail.count("emma@example.com"); n != mails {
			t.Fatalf("%d mails to emma after a resend, want %d", n, mails)
		}
		second = codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
		// The resend answered with a redirect: reloading the page it
		// led to sends nothing.
		if page.url.Path != "/login/otp" || b.get(page.url.String()).status != http.StatusOK || h.mail.count("emma@example.com") != mails {
			t.Fatalf("reloading %s after a resend: %d mails, want %d", page.url, h.mail.count("emma@example.com"), mails)
		}
	}
	old := b.submit(page, map[string]string{"otp": first})
	if old.status != http.StatusForbidden || !strings.Contains(old.body, "not right") {
		t.Fatalf("the replaced code: status %d, want 403:\n%s", old.status, old.body)
	}
	signedInAs(t, h.rp, az, h.finish(t, b, old, second), h.emma, "pwd otp mfa")
}

func testPagesSMS(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	az := h.rp.authorize()
	p := h.otpPage(t, b, az, h.sam)
	if !strings.Contains(p.body, "We sent a 6-digit code to •••• 0123") || strings.Contains(p.body, "900123") {
		t.Fatalf("the code page does not name the masked number:\n%s", p.body)
	}
	if !hasForm(p, "/login/otp/resend") || showsSecret(p) {
		t.Fatalf("an SMS code page: want a resend button and no enrolment material:\n%s", p.body)
	}
	msg, auth := h.sms.last(t, "+447700900123")
	if auth != "Bearer gateway-token" {
		t.Errorf("the webhook got Authorization %q", auth)
	}
	if n := h.mail.count("sam@example.com"); n != 0 {
		t.Fatalf("an SMS sign-in sent %d mails", n)
	}
	code := codeIn(t, msg)
	wrong := b.submit(p, map[string]string{"otp": wrongCode(code)})
	if wrong.status != http.StatusForbidden {
		t.Fatalf("a wrong texted code: status %d", wrong.status)
	}
	signedInAs(t, h.rp, az, h.finish(t, b, wrong, code), h.sam, "pwd sms mfa")
}

func testPagesRecovery(t *testing.T, h *hfixture) {
	codes := h.recoveryCodes(t, h.alice)
	b := newBrowser(t, h.s)
	az := h.rp.authorize()
	p := h.otpPage(t, b, az, h.alice)
	if !strings.Contains(p.body, "recovery codes") || hasForm(p, "/login/otp/resend") {
		t.Fatalf("the TOTP code page: want the recovery hint and no resend button:\n%s", p.body)
	}
	// A recovery code in place of the authenticator's code.
	signedInAs(t, h.rp, az, h.finish(t, b, p, codes[0]), h.alice, "pwd otp mfa")
	if notice := h.mail.last(t, "alice@example.com", "recovery code"); !strings.Contains(notice, "9 left") {
		t.Fatalf("the recovery notice: %s", notice)
	}

	// It works once: the next sign-in refuses it and takes another.
	b = newBrowser(t, h.s)
	az = h.rp.authorize()
	p = h.otpPage(t, b, az, h.alice)
	used := b.submit(p, map[string]string{"otp": codes[0]})
	if used.status != http.StatusForbidden || !strings.Contains(used.body, "not right") {
		t.Fatalf("a used recovery code: status %d:\n%s", used.status, used.body)
	}
	signedInAs(t, h.rp, az, h.finish(t, b, used, codes[1]), h.alice, "pwd otp mfa")
	if left, err := h.s.db.RecoveryCodesLeft(t.Context(), h.alice.ID); err != nil || left != 8 {
		t.Fatalf("recovery codes left: %d, %v; want 8", left, err)
	}
}

func testPagesEnrolEmailThenTOTP(t *testing.T, h *hfixture) {
	rp := h.pagesClient(t, storage.EnrollEmailThenTOTP)
	b := newBrowser(t, h.s)
	az := rp.authorize()
	p := h.otpPage(t, b, az, h.nora)
	// First the emailed code: no secret for a password alone.
	if !strings.Contains(p.body, "n•••@example.com") || showsSecret(p) {
		t.Fatalf("the first step for a user without a second factor:\n%s", p.body)
	}
	code := codeIn(t, h.mail.last(t, "nora@example.com", "sign-in code"))
	setup := b.submit(p, map[string]string{"otp": code})
	if setup.status != http.StatusOK || setup.url.Path != "/login/otp" || !strings.Contains(setup.body, "<h1>Set up your authenticator</h1>") {
		t.Fatalf("after the emailed code: %s status %d:\n%s", setup.url, setup.status, setup.body)
	}
	secret := secretOn(t, setup)
	_, qr, ok := strings.Cut(setup.body, `src="data:image/png;base64,`)
	qr, _, _ = strings.Cut(qr, `"`)
	raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(qr))
	if !ok || err != nil {
		t.Fatalf("no QR code data URL on the page: %v", err)
	}
	if img, err := png.Decode(bytes.NewReader(raw)); err != nil || img.Bounds().Dx() < 21 {
		t.Fatalf("the QR code is not a PNG image: %v", err)
	}
	// The secret is this browser's: another one is refused, a reload shows
	// the same secret.
	if other := newBrowser(t, h.s).get(setup.url.String()); other.status != http.StatusForbidden || strings.Contains(other.body, secret) {
		t.Fatalf("another browser at the setup page: status %d", other.status)
	}
	if again := b.get(setup.url.String()); secretOn(t, again) != secret {
		t.Fatal("a reload shows another secret")
	}
	if _, err := h.s.db.GetTOTP(t.Context(), h.nora.ID); err == nil {
		t.Fatal("the secret was adopted before its first code")
	}
	h.nora.totpSecret = secret
	wrong := b.submit(setup, map[string]string{"otp": wrongCode(h.s.code(t, h.nora))})
	if wrong.status != http.StatusForbidden || !strings.Contains(wrong.body, "not right") || secretOn(t, wrong) != secret {
		t.Fatalf("a wrong first code: status %d, want 403 beside the same secret:\n%s", wrong.status, wrong.body)
	}
	// The app's first code finishes the sign-in.
	signedInAs(t, rp, az, h.finish(t, b, wrong, h.s.code(t, h.nora)), h.nora, "pwd otp mfa")
	h.mail.last(t, "nora@example.com", "authenticator app was just set up")

	// From now on nora signs in with the app, and no mail is sent.
	h.nextStep()
	mails := h.mail.count("nora@example.com")
	b = newBrowser(t, h.s)
	az = rp.authorize()
	p = h.otpPage(t, b, az, h.nora)
	if !strings.Contains(p.body, "authenticator app") || hasForm(p, "/login/otp/resend") || showsSecret(p) {
		t.Fatalf("after enrolment: the code page:\n%s", p.body)
	}
	signedInAs(t, rp, az, h.finish(t, b, p, h.s.code(t, h.nora)), h.nora, "pwd otp mfa")
	if n := h.mail.count("nora@example.com"); n != mails {
		t.Fatalf("a TOTP sign-in sent %d mails", n-mails)
	}
}

func testPagesRefuse(t *testing.T, h *hfixture) {
	rp := h.pagesClient(t, "")
	if c, err := h.s.db.GetClient(t.Context(), "pages"); err != nil || c.EnrollmentPolicy != storage.EnrollRefuse {
		t.Fatalf("default policy: %+v, %v", c, err)
	}
	b := newBrowser(t, h.s)
	p := b.submit(h.passwordPage(t, b, rp.authorize()), map[string]string{"username": "nora", "password": h.nora.password})
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "Contact your administrator") || p.header.Get("Location") != "" {
		t.Fatalf("refuse policy: status %d, want 403 and a message to contact the operator:\n%s", p.status, p.body)
	}
	// The only form is the way back to the application (pages_details_test.go).
	if f, ok := p.Form(); ok && f.Action.String() != "/login/cancel" || len(p.Forms()) > 1 || showsSecret(p) || strings.Contains(p.body, "code=") {
		t.Fatalf("refuse policy: the page offers a way on:\n%s", p.body)
	}
	if n := h.mail.count("nora@example.com"); n != 0 {
		t.Fatalf("refuse policy sent %d mails", n)
	}
	// No session either: the next authorization asks for the password again.
	if again := b.get(rp.authorize().url); again.status != http.StatusOK || again.url.Path != "/login" {
		t.Fatalf("after a refusal, the next authorization went to %s (status %d)", again.url, again.status)
	}

	// Positive control: the same user and client under email-then-totp get on.
	if _, err := h.s.db.UpdateClient(t.Context(), "pages", func(c *storage.Client) error {
		c.EnrollmentPolicy = storage.EnrollEmailThenTOTP
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.otpPage(t, newBrowser(t, h.s), rp.authorize(), h.nora)
	h.mail.last(t, "nora@example.com", "sign-in code")
}
