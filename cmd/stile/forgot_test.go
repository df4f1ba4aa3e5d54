package main

import (
	"bytes"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestForgotPassword drives forgot password (issue 12, item 2) as people
// and attackers would — stile's pages in real browsers (cookie jars), the
// JSON API from a custom login page's origin, the mail through a real SMTP
// server, texts through the SMS webhook — on SQLite and PostgreSQL.
func TestForgotPassword(t *testing.T) {
	runHeadless(t, []hscenario{
		{"SameAnswerOneMail", testForgotSameAnswer},
		{"ResetWithTOTP", testResetTOTP},
		{"LinkBoundSingleUseExpires", testResetLinkRules},
		{"WrongCodesBounded", testResetWrongCodes},
		{"RecoverySMSAndNoFactor", testResetOtherFactors},
		{"JSONAPI", testForgotAPI},
		{"Limits", testForgotLimits},
		{"EndedByOperator", testResetEndedByOperator},
	})
}

// waitEvents waits for n events of typ after mark — the forgot-password
// work runs after its answer — and returns them. It polls the store, with
// a bound on the polls, never on a duration it asserts.
func waitEvents(t *testing.T, s *server, mark int64, typ string, n int) []storage.Event {
	t.Helper()
	var got []storage.Event
	for range 1000 {
		got = got[:0]
		for _, e := range trail(t, s, mark) {
			if e.Type == typ {
				got = append(got, e)
			}
		}
		if len(got) >= n {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d %s events after %d, want %d", len(got), typ, mark, n)
	return nil
}

// forgotForm follows the sign-in page's "Forgot password?" link.
func (h *hfixture) forgotForm(t *testing.T, b *browser) *page {
	t.Helper()
	signIn := h.passwordPage(t, b, h.rp.authorize())
	link := signIn.link(t, "Forgot password?")
	if link.Path != "/login/forgot" || link.Query().Get("authRequestID") == "" {
		t.Fatalf("the forgot link %s does not keep the sign-in's authRequestID", link)
	}
	form := b.get(signIn.url.ResolveReference(link).String())
	if form.status != http.StatusOK || !strings.Contains(form.body, `name="identifier"`) {
		t.Fatalf("the forgot form: %d\n%s", form.status, form.body)
	}
	return form
}

var resetLinkRE = regexp.MustCompile(`https?://[^\s]+/login/reset\?token=[A-Za-z0-9_-]+`)

// requestLink asks for a reset link for identifier in browser b and returns
// the link mailed to `to` (the newest one).
func (h *hfixture) requestLink(t *testing.T, b *browser, identifier, to string) string {
	t.Helper()
	mark, before := lastID(t, h.s), h.mail.count(to)
	p := b.submit(h.forgotForm(t, b), map[string]string{"identifier": identifier})
	if p.status != http.StatusOK || !strings.Contains(p.body, "If an account matches") {
		t.Fatalf("forgot %q: %d\n%s", identifier, p.status, p.body)
	}
	waitEvents(t, h.s, mark, login.EventResetRequested, 1)
	if n := h.mail.count(to); n != before+1 {
		t.Fatalf("%d mails to %s after one request, want %d", n, to, before+1)
	}
	return resetLinkIn(t, h.mail.last(t, to, "Reset your password"))
}

func resetLinkIn(t *testing.T, mail string) string {
	t.Helper()
	// go-mail writes long lines quoted-printable: undo its soft breaks.
	m := resetLinkRE.FindString(strings.NewReplacer("=\r\n", "", "=3D", "=").Replace(mail))
	if m == "" {
		t.Fatalf("no reset link in:\n%s", mail)
	}
	return m
}

// testForgotSameAnswer: an existing account (by username, and by email
// address), an unknown name and an account without an email address get
// the same status and the same bytes; exactly one mail goes out per real
// account with an address, none for the others, and the trail names nobody
// for the unknown name.
func testForgotSameAnswer(t *testing.T, h *hfixture) {
	noMail := h.userWith(t, "noel", func(u *storage.User) { u.Email = "" })
	b := newBrowser(t, h.s)
	form := h.forgotForm(t, b)
	mark := lastID(t, h.s)
	answers := map[string]*page{}
	for _, id := range []string{"alice", "nobody-at-all", noMail.Username, "sam@example.com"} {
		answers[id] = b.submit(form, map[string]string{"identifier": id})
	}
	want := answers["alice"]
	if want.status != http.StatusOK || !strings.Contains(want.body, "If an account matches") {
		t.Fatalf("forgot for alice: %d\n%s", want.status, want.body)
	}
	for id, p := range answers {
		if p.status != want.status || p.body != want.body {
			t.Fatalf("the answer for %q (%d) differs from alice's (%d):\n%s\n---\n%s", id, p.status, want.status, p.body, want.body)
		}
	}
	events := waitEvents(t, h.s, mark, login.EventResetRequested, 4)
	outcomes := map[string]string{}
	for _, e := range events {
		outcomes[e.UserID] = e.Outcome + "/" + e.Reason
	}
	if outcomes[h.alice.ID] != "success/" || outcomes[h.sam.ID] != "success/" || outcomes[noMail.ID] != "failure/no_email" ||
		outcomes[""] != "failure/unknown_account" {
		t.Fatalf("the trail: %v", outcomes)
	}
	if h.mail.count("alice@example.com") != 1 || h.mail.count("sam@example.com") != 1 || h.mail.total() != 2 {
		t.Fatalf("mails: alice %d, sam %d, all %d; want one each and no other", h.mail.count("alice@example.com"),
			h.mail.count("sam@example.com"), h.mail.total())
	}
	// Positive control: alice's mail holds a link that opens.
	if p := b.get(resetLinkIn(t, h.mail.last(t, "alice@example.com", "Reset your password"))); p.status != http.StatusOK ||
		!strings.Contains(p.body, "authenticator app") {
		t.Fatalf("alice's link: %d\n%s", p.status, p.body)
	}
	// A blank identifier is refused before anything, with the form again.
	if p := b.submit(form, map[string]string{"identifier": "  "}); p.status != http.StatusBadRequest || !strings.Contains(p.body, `name="identifier"`) {
		t.Fatalf("a blank identifier: %d", p.status)
	}
}

// offlineIn signs u in to "app" in b with offline_access and returns the
// refresh token.
func (h *hfixture) offlineIn(t *testing.T, b *browser, u *user) string {
	t.Helper()
	az := h.rp.authorize("scope", "openid profile offline_access")
	code := h.signIn(t, b, az, u)
	resp, body := rawToken(t, h.s, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {appRedirect}, "code_verifier": {az.verifier}}, "app", h.secret)
	rt, _ := body["refresh_token"].(string)
	if resp.StatusCode != http.StatusOK || rt == "" {
		t.Fatalf("code exchange with offline_access: %d %v", resp.StatusCode, body)
	}
	return rt
}

// signedIn reports whether b's next authorization is answered silently by
// its SSO session.
func (h *hfixture) signedIn(t *testing.T, b *browser) bool {
	t.Helper()
	p := b.get(h.rp.authorize().url)
	if loc := p.Location(); loc != nil && loc.Query().Get("code") != "" {
		return true
	}
	if p.status != http.StatusOK || p.url.Path != "/login" {
		t.Fatalf("authorize: %d at %s", p.status, p.url)
	}
	return false
}

// testResetTOTP: the whole reset for a user with an authenticator app.
// The new password is refused before the second factor and with a wrong
// code; a breached password and two different ones are refused, a strong
// one is set; every session and refresh token of the user ends, the user
// is told by mail, the link is spent, and the new password signs in.
func testResetTOTP(t *testing.T, h *hfixture) {
	old := newBrowser(t, h.s)
	refresh := h.offlineIn(t, old, h.alice)
	if !h.signedIn(t, old) {
		t.Fatal("positive control: the old browser has a session")
	}
	status, body := h.refresh(t, refresh, "app", h.secret)
	if status != http.StatusOK {
		t.Fatalf("positive control: the refresh token works before the reset: %d %v", status, body)
	}
	refresh, _ = body["refresh_token"].(string) // refresh tokens rotate

	b := newBrowser(t, h.s)
	spare := h.requestLink(t, newBrowser(t, h.s), "alice", "alice@example.com") // a second link, never used
	link := h.requestLink(t, b, "alice", "alice@example.com")
	token := mustParse(t, link).Query().Get("token")
	codeForm := b.get(link)
	if codeForm.status != http.StatusOK || !strings.Contains(codeForm.body, "authenticator app") || strings.Contains(codeForm.body, `name="password"`) {
		t.Fatalf("the link's first page: %d\n%s", codeForm.status, codeForm.body)
	}
	newPassword := "alice's brand new passphrase"
	setPassword := func(pw, confirm string) *page {
		return b.post(h.s.URL+"/login/reset/password", url.Values{"token": {token}, "password": {pw}, "confirm": {confirm}})
	}
	// Without the second factor: refused, nothing changed.
	before := h.storedHash(t, h.alice.ID)
	if p := setPassword(newPassword, newPassword); p.status != http.StatusBadRequest || !strings.Contains(p.body, "second factor first") {
		t.Fatalf("a new password before the second factor: %d\n%s", p.status, p.body)
	}
	if h.storedHash(t, h.alice.ID) != before {
		t.Fatal("the password changed without the second factor")
	}
	h.nextStep() // a TOTP step the sign-ins above did not spend
	right := h.s.code(t, h.alice)
	if p := b.submit(codeForm, map[string]string{"otp": wrongCode(right)}); p.status != http.StatusForbidden || !strings.Contains(p.body, "4 tries left") {
		t.Fatalf("a wrong code: %d\n%s", p.status, p.body)
	}
	if p := setPassword(newPassword, newPassword); p.status != http.StatusBadRequest {
		t.Fatalf("a new password after a wrong code: %d", p.status)
	}
	pwForm := b.submit(codeForm, map[string]string{"otp": right})
	if pwForm.status != http.StatusOK || !strings.Contains(pwForm.body, `name="confirm"`) {
		t.Fatalf("the right code: %d\n%s", pwForm.status, pwForm.body)
	}
	// The password's rules: the breached list, then two different ones.
	if p := b.submit(pwForm, map[string]string{"password": "Password123", "confirm": "Password123"}); p.status != http.StatusBadRequest ||
		!strings.Contains(p.body, "most common passwords") || !strings.Contains(p.body, `name="confirm"`) {
		t.Fatalf("a breached password: %d\n%s", p.status, p.body)
	}
	if p := b.submit(pwForm, map[string]string{"password": newPassword, "confirm": newPassword + "!"}); p.status != http.StatusBadRequest {
		t.Fatalf("two different passwords: %d", p.status)
	}
	if h.storedHash(t, h.alice.ID) != before {
		t.Fatal("a refused password was stored")
	}
	mark := lastID(t, h.s)
	done := b.submit(pwForm, map[string]string{"password": newPassword, "confirm": newPassword})
	if done.status != http.StatusOK || !strings.Contains(done.body, "Your password was changed") {
		t.Fatalf("a strong password: %d\n%s", done.status, done.body)
	}
	if ok, _ := login.DefaultArgon2id.Verify(h.storedHash(t, h.alice.ID), newPassword); !ok {
		t.Fatal("alice's stored password is not the new one")
	}
	expectTrail(t, h.s, mark,
		want{typ: "user.password_set", outcome: storage.Success, user: h.alice.ID},
		want{typ: login.EventReset, outcome: storage.Success, user: h.alice.ID, detail: map[string]any{"step": "password"}})
	// Every session and refresh token ended; the user was told.
	if h.signedIn(t, old) {
		t.Fatal("the old browser's session survived the reset")
	}
	if status, body := h.refresh(t, refresh, "app", h.secret); status != http.StatusBadRequest {
		t.Fatalf("the refresh token survived the reset: %d %v", status, body)
	}
	h.mail.last(t, "alice@example.com", "Your password was changed")
	// The link is spent, and the user's other link with it.
	if p := b.get(link); p.status != http.StatusGone {
		t.Fatalf("the spent link: %d", p.status)
	}
	if p := newBrowser(t, h.s).get(spare); p.status != http.StatusGone {
		t.Fatalf("the other link, after the reset: %d", p.status)
	}
	if p := setPassword("yet another passphrase", "yet another passphrase"); p.status != http.StatusGone {
		t.Fatalf("the spent link posted: %d", p.status)
	}
	// The new password signs in (the old one does not).
	h.nextStep()
	alice := *h.alice
	alice.password = "correct horse alice"
	if p := b.submit(h.passwordPage(t, b, h.rp.authorize()), map[string]string{"username": "alice", "password": alice.password}); p.status != http.StatusUnauthorized {
		t.Fatalf("the old password: %d", p.status)
	}
	alice.password = newPassword
	h.signIn(t, newBrowser(t, h.s), h.rp.authorize(), &alice)
}

// testResetLinkRules: a link opened in one browser is refused in another
// (which changes nothing) while the first goes on; a second link does not
// end the first (someone else asking must not break the user's reset); a
// link expires after 30 minutes; a made-up token opens nothing.
func testResetLinkRules(t *testing.T, h *hfixture) {
	b, c := newBrowser(t, h.s), newBrowser(t, h.s)
	link := h.requestLink(t, b, "alice", "alice@example.com")
	token := mustParse(t, link).Query().Get("token")
	if p := b.get(link); p.status != http.StatusOK {
		t.Fatalf("the first browser: %d", p.status)
	}
	h.nextStep()
	for what, p := range map[string]*page{
		"open":   c.get(link),
		"code":   c.post(h.s.URL+"/login/reset", url.Values{"token": {token}, "otp": {h.s.code(t, h.alice)}}),
		"resend": c.post(h.s.URL+"/login/reset/resend", url.Values{"token": {token}}),
		"set":    c.post(h.s.URL+"/login/reset/password", url.Values{"token": {token}, "password": {"the intruder's passphrase"}, "confirm": {"the intruder's passphrase"}}),
	} {
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "another browser") {
			t.Fatalf("another browser, %s: %d\n%s", what, p.status, p.body)
		}
	}
	// Positive control: the first browser proves the factor with the very code the other sent.
	if p := b.submit(b.get(link), map[string]string{"otp": h.s.code(t, h.alice)}); p.status != http.StatusOK || !strings.Contains(p.body, `name="confirm"`) {
		t.Fatalf("the first browser, the right code: %d\n%s", p.status, p.body)
	}
	// A second link leaves the first as it was: proven, asking for the password.
	newer := h.requestLink(t, b, "alice", "alice@example.com")
	if p := b.get(link); p.status != http.StatusOK || !strings.Contains(p.body, `name="confirm"`) {
		t.Fatalf("the first link after a second was sent: %d\n%s", p.status, p.body)
	}
	if p := b.get(newer); p.status != http.StatusOK || !strings.Contains(p.body, `name="otp"`) {
		t.Fatalf("the newer link: %d", p.status)
	}
	// 30 minutes: just before, it opens; just after, it does not.
	h.s.clock.Advance(login.ResetLinkLifetime - time.Second)
	if p := b.get(newer); p.status != http.StatusOK {
		t.Fatalf("the link before 30 minutes: %d", p.status)
	}
	h.s.clock.Advance(2 * time.Second)
	if p := b.get(newer); p.status != http.StatusGone || !strings.Contains(p.body, "Ask for a new link") {
		t.Fatalf("the link after 30 minutes: %d\n%s", p.status, p.body)
	}
	if p := b.get(h.s.URL + login.ResetPath + "?token=made-up"); p.status != http.StatusGone {
		t.Fatalf("a made-up token: %d", p.status)
	}
}

// testResetEndedByOperator: an operator who sets the user's password (as
// after a call to the help desk) ends the links still pending, with the
// sessions; so does disabling the account.
func testResetEndedByOperator(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	cli := func(stdin string, args ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		args = append(args, "--database", h.s.dbURL, "--secret-file", h.s.keyFile)
		if err := run(t.Context(), args, func(string) string { return "" }, strings.NewReader(stdin), &out, &errOut); err != nil {
			t.Fatalf("stile %v: %v\n%s", args, err, errOut.String())
		}
	}
	for _, end := range []struct {
		name, stdin string
		args        []string
	}{
		{"set-password", "the help desk's long phrase\n", []string{"user", "set-password", "alice", "--password-stdin"}},
		{"disable", "", []string{"user", "disable", "alice"}},
	} {
		link := h.requestLink(t, b, "alice", "alice@example.com")
		if p := b.get(link); p.status != http.StatusOK || !strings.Contains(p.body, `name="otp"`) { // positive control
			t.Fatalf("before %s, the link: %d\n%s", end.name, p.status, p.body)
		}
		cli(end.stdin, end.args...)
		if p := b.get(link); p.status != http.StatusGone {
			t.Fatalf("after %s, the link: %d\n%s", end.name, p.status, p.body)
		}
	}
}

// testResetWrongCodes: wrong codes on a link are bounded — the fifth ends
// the link, and the right code after it opens nothing — and they count
// against the account like any wrong code; a new link, after the lock,
// takes the right code.
func testResetWrongCodes(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	link := h.requestLink(t, b, "alice", "alice@example.com")
	form := b.get(link)
	right := h.s.code(t, h.alice)
	for i := 4; i >= 1; i-- {
		if p := b.submit(form, map[string]string{"otp": wrongCode(right)}); p.status != http.StatusForbidden {
			t.Fatalf("wrong code with %d tries left: %d", i, p.status)
		}
	}
	if p := b.submit(form, map[string]string{"otp": wrongCode(right)}); p.status != http.StatusGone || !strings.Contains(p.body, "Too many wrong codes") {
		t.Fatalf("the fifth wrong code: %d\n%s", p.status, p.body)
	}
	if p := b.submit(form, map[string]string{"otp": right}); p.status != http.StatusGone {
		t.Fatalf("the right code on a dead link: %d", p.status)
	}
	// Five wrong codes from this address lock the pair, as for a sign-in.
	fresh := h.requestLink(t, b, "alice", "alice@example.com")
	if p := b.submit(b.get(fresh), map[string]string{"otp": right}); p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Fatalf("the right code while locked: %d", p.status)
	}
	h.s.clock.Advance(31 * time.Second)
	if p := b.submit(b.get(fresh), map[string]string{"otp": h.s.code(t, h.alice)}); p.status != http.StatusOK || !strings.Contains(p.body, `name="confirm"`) {
		t.Fatalf("the right code on a new link after the lock: %d\n%s", p.status, p.body)
	}
}

// testResetOtherFactors: a recovery code proves the factor (and is spent,
// with its notice); a user whose code comes by text gets one when the link
// opens; a user whose only factor is email — the link's own channel — or
// who has none is told to ask an administrator, and cannot set a password.
func testResetOtherFactors(t *testing.T, h *hfixture) {
	// emma: email codes only. Refused, whatever is posted.
	b := newBrowser(t, h.s)
	link := h.requestLink(t, b, "emma", "emma@example.com")
	if p := b.get(link); p.status != http.StatusForbidden || !strings.Contains(p.body, "administrator") {
		t.Fatalf("a reset for an email-only user: %d\n%s", p.status, p.body)
	}
	token := mustParse(t, link).Query().Get("token")
	if p := b.post(h.s.URL+"/login/reset", url.Values{"token": {token}, "otp": {"123456"}}); p.status != http.StatusForbidden {
		t.Fatalf("a code for an email-only user: %d", p.status)
	}
	// With recovery codes, emma proves herself with one.
	codes := h.recoveryCodes(t, h.emma)
	form := b.get(link)
	if form.status != http.StatusOK || !strings.Contains(form.body, "recovery codes") {
		t.Fatalf("emma with recovery codes: %d\n%s", form.status, form.body)
	}
	if p := b.submit(form, map[string]string{"otp": "123456"}); p.status != http.StatusBadRequest {
		t.Fatalf("a 6-digit code where a recovery code is due: %d", p.status)
	}
	pw := b.submit(form, map[string]string{"otp": codes[0]})
	if pw.status != http.StatusOK || !strings.Contains(pw.body, `name="confirm"`) {
		t.Fatalf("a recovery code: %d\n%s", pw.status, pw.body)
	}
	h.mail.last(t, "emma@example.com", "A recovery code was used")
	if p := b.submit(pw, map[string]string{"password": "emma's new passphrase", "confirm": "emma's new passphrase"}); p.status != http.StatusOK {
		t.Fatalf("emma's new password: %d", p.status)
	}

	// sam: texted codes. Opening the link sends one; it proves the factor.
	c := newBrowser(t, h.s)
	smsForm := c.get(h.requestLink(t, c, "sam", "sam@example.com"))
	if smsForm.status != http.StatusOK || !strings.Contains(smsForm.body, "0123") {
		t.Fatalf("sam's link: %d\n%s", smsForm.status, smsForm.body)
	}
	msg, _ := h.sms.last(t, "+447700900123")
	if !strings.Contains(msg, "reset your password") {
		t.Fatalf("sam's text: %s", msg)
	}
	if p := c.submit(smsForm, map[string]string{"otp": wrongCode(codeIn(t, msg))}); p.status != http.StatusForbidden {
		t.Fatalf("a wrong texted code: %d", p.status)
	}
	if p := c.submit(smsForm, map[string]string{"otp": codeIn(t, msg)}); p.status != http.StatusOK || !strings.Contains(p.body, `name="confirm"`) {
		t.Fatalf("the texted code: %d\n%s", p.status, p.body)
	}

	// nora: no second factor at all. Refused.
	d := newBrowser(t, h.s)
	if p := d.get(h.requestLink(t, d, "nora", "nora@example.com")); p.status != http.StatusForbidden {
		t.Fatalf("a reset for a user without a factor: %d", p.status)
	}
}

// testForgotAPI: the JSON API's forgot answers the same for an account and
// an unknown name, from the client's registered origin with the request's
// loginToken; another origin, no loginToken, a wrong one, or a body not
// labelled JSON are refused and send nothing. The mailed link leads to
// stile's own reset page.
func testForgotAPI(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	arID, _ := h.handoff(t, b)
	body := func(identifier, token string) map[string]string {
		return map[string]string{"authRequestID": arID, "loginToken": token, "identifier": identifier}
	}
	const path = "/login/api/password/forgot"
	mark := lastID(t, h.s)
	expect(t, "another origin", h.call(t, path, "https://evil.example.com", body("alice", h.loginToken(arID))), http.StatusForbidden, "origin_not_allowed")
	expect(t, "no loginToken", h.call(t, path, customOrigin, body("alice", "")), http.StatusBadRequest, "invalid_request")
	expect(t, "a wrong loginToken", h.call(t, path, customOrigin, body("alice", "forged")), http.StatusForbidden, "wrong_browser")
	raw := b.raw(http.MethodPost, h.s.URL+path, "text/plain", mustJSON(body("alice", h.loginToken(arID))))
	if raw.status != http.StatusUnsupportedMediaType {
		t.Fatalf("a text/plain body: %d", raw.status)
	}
	known := h.call(t, path, customOrigin, body("alice", h.loginToken(arID)))
	unknown := h.call(t, path, customOrigin, body("nobody-at-all", h.loginToken(arID)))
	expect(t, "forgot for alice", known, http.StatusOK, "")
	if unknown.status != known.status || mustJSON(unknown.body) != mustJSON(known.body) {
		t.Fatalf("unknown %d %v differs from alice %d %v", unknown.status, unknown.body, known.status, known.body)
	}
	if known.header.Get("Access-Control-Allow-Origin") != customOrigin {
		t.Error("the answer lacks Access-Control-Allow-Origin for the registered origin")
	}
	waitEvents(t, h.s, mark, login.EventResetRequested, 2)
	if n := h.mail.count("alice@example.com"); n != 1 || h.mail.total() != 1 {
		t.Fatalf("%d mails to alice, %d in all; want exactly one", n, h.mail.total())
	}
	link := resetLinkIn(t, h.mail.last(t, "alice@example.com", "Reset your password"))
	if u := mustParse(t, link); u.Scheme+"://"+u.Host != h.s.URL || u.Path != login.ResetPath {
		t.Fatalf("the link points at %s, want stile's reset page", link)
	}
	if p := b.get(link); p.status != http.StatusOK || !strings.Contains(p.body, "authenticator app") {
		t.Fatalf("the link in the browser: %d", p.status)
	}
}

// testForgotLimits: one address gets Limits.ForgotPerAddress requests a
// minute, then a 429 with Retry-After — the same for an account and an
// unknown name; one user gets at most SendsPerMinute links a minute,
// however many are asked for, each of which works.
func testForgotLimits(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	form := h.forgotForm(t, b)
	mark := lastID(t, h.s)
	limit := login.DefaultLimits.ForgotPerAddress.Limit
	for i := range limit {
		if p := b.submit(form, map[string]string{"identifier": "alice"}); p.status != http.StatusOK {
			t.Fatalf("request %d of %d: %d", i+1, limit, p.status)
		}
	}
	for _, id := range []string{"alice", "nobody-at-all"} {
		if p := b.submit(form, map[string]string{"identifier": id}); p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
			t.Fatalf("past the address's rate, %q: %d", id, p.status)
		}
	}
	events := waitEvents(t, h.s, mark, login.EventResetRequested, limit)
	sent := 0
	for _, e := range events {
		switch {
		case e.Outcome == storage.Success:
			sent++
		case e.Reason != "send_limit":
			t.Fatalf("a request not sent for another reason: %+v", e)
		}
	}
	perMinute := login.DefaultLimits.SendsPerMinute.Limit
	if sent != perMinute || h.mail.count("alice@example.com") != perMinute {
		t.Fatalf("%d links sent (%d mails) for %d requests, want %d", sent, h.mail.count("alice@example.com"), limit, perMinute)
	}
	for i, m := range h.mail.sent("alice@example.com") {
		if p := newBrowser(t, h.s).get(resetLinkIn(t, m)); p.status != http.StatusOK {
			t.Fatalf("link %d: %d", i+1, p.status)
		}
	}
}

// TestForgotPasswordRaces attacks a reset link with concurrency, on SQLite
// and PostgreSQL: twenty wrong codes at once get at most five checked (the
// link's bound, counted before each check), and five new passwords posted
// at once on a proven link set exactly one.
func TestForgotPasswordRaces(t *testing.T) {
	runHeadless(t, []hscenario{
		{"ConcurrentWrongCodes", testResetConcurrentCodes},
		{"ConcurrentNewPasswords", testResetConcurrentPasswords},
	})
}

// linkPoster posts forms with b's binding cookie, and nothing else: the
// test posts concurrently as that one browser.
func linkPoster(t *testing.T, h *hfixture, b *browser) func(path string, form url.Values) int {
	ck := b.cookie("stile_browser")
	if ck == nil {
		t.Fatal("the browser has no binding cookie")
	}
	return func(path string, form url.Values) int {
		req, _ := http.NewRequest(http.MethodPost, h.s.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
}

func concurrently(n int, fn func() int) map[int]int {
	var mu sync.Mutex
	var wg sync.WaitGroup
	got := map[int]int{}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := fn()
			mu.Lock()
			got[s]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return got
}

const maxResetCodes = 5 // login.Flow.MaxOTPFailures: wrong codes a link takes

func testResetConcurrentCodes(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	link := h.requestLink(t, b, "alice", "alice@example.com")
	token := mustParse(t, link).Query().Get("token")
	if p := b.get(link); p.status != http.StatusOK {
		t.Fatalf("the link: %d", p.status)
	}
	post := linkPoster(t, h, b)
	wrong := wrongCode(h.s.code(t, h.alice))
	mark := lastID(t, h.s)
	got := concurrently(20, func() int { return post("/login/reset", url.Values{"token": {token}, "otp": {wrong}}) })
	if got[http.StatusForbidden] > 4 || got[http.StatusForbidden]+got[http.StatusGone]+got[http.StatusTooManyRequests] != 20 {
		t.Fatalf("20 concurrent wrong codes: %v, want at most 4 invalid_otp and the rest refused", got)
	}
	checked := 0
	for _, e := range trail(t, h.s, mark) {
		if e.Type == login.EventReset && e.Reason == "wrong_code" {
			checked++
		}
	}
	if checked > maxResetCodes {
		t.Fatalf("%d wrong codes were checked, want at most %d", checked, maxResetCodes)
	}
	// The link is dead for the right code too.
	if s := post("/login/reset", url.Values{"token": {token}, "otp": {h.s.code(t, h.alice)}}); s != http.StatusGone {
		t.Fatalf("the right code after the race: %d", s)
	}
}

func testResetConcurrentPasswords(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	link := h.requestLink(t, b, "alice", "alice@example.com")
	token := mustParse(t, link).Query().Get("token")
	if p := b.submit(b.get(link), map[string]string{"otp": h.s.code(t, h.alice)}); p.status != http.StatusOK || !strings.Contains(p.body, `name="confirm"`) {
		t.Fatalf("the right code: %d", p.status)
	}
	post := linkPoster(t, h, b)
	var n atomic.Int64
	got := concurrently(5, func() int {
		pw := "racing passphrase number " + strconv.FormatInt(n.Add(1), 10)
		return post("/login/reset/password", url.Values{"token": {token}, "password": {pw}, "confirm": {pw}})
	})
	if got[http.StatusOK] != 1 || got[http.StatusOK]+got[http.StatusGone]+got[http.StatusServiceUnavailable] != 5 {
		t.Fatalf("5 concurrent new passwords: %v, want exactly one set", got)
	}
	if c := strings.Count(strings.Join(h.mail.sent("alice@example.com"), "\n"), "Subject: Your password was changed"); c != 1 {
		t.Fatalf("%d password-changed notices, want 1", c)
	}
}

// TestBreachedPasswordAtTheCLI: an operator's set-password and user add
// refuse a common password with the reason, and take a strong one
// (the account service's rule, on SQLite and PostgreSQL).
func TestBreachedPasswordAtTheCLI(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := startServer(t, d.URL(t))
			s.addUser(t, "alice", true)
			cli := func(stdin string, args ...string) error {
				var out, errOut bytes.Buffer
				args = append(args, "--database", s.dbURL, "--secret-file", s.keyFile)
				return run(t.Context(), args, func(string) string { return "" }, strings.NewReader(stdin), &out, &errOut)
			}
			if err := cli("iloveyou1\n", "user", "set-password", "alice", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "most common passwords") {
				t.Fatalf("set-password with a common password: %v", err)
			}
			if err := cli("Football1\n", "user", "add", "--username", "bob", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "most common passwords") {
				t.Fatalf("user add with a common password: %v", err)
			}
			if err := cli("alice's own long phrase\n", "user", "set-password", "alice", "--password-stdin"); err != nil {
				t.Fatalf("set-password with a strong password: %v", err)
			}
		})
	}
}
