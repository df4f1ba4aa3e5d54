package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/http"
	netmail "net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
)

// mfaAPI is the self-service second-factor API.
const mfaAPI = "/account/api/mfa"

// TestSelfService drives the self-service second-factor API over real HTTP
// with access tokens the first-party client "app" got through the
// authorization-code flow, on SQLite and PostgreSQL. Every refusal sits
// beside the success it differs from.
func TestSelfService(t *testing.T) {
	runHeadless(t, []hscenario{
		{"Unauthorized", testSelfServiceUnauthorized},
		{"StepUp", testSelfServiceStepUp},
		{"TOTP", testSelfServiceTOTP},
		{"RecoveryCodes", testSelfServiceRecoveryCodes},
		{"Preferred", testSelfServicePreferred},
		{"CORS", testSelfServiceCORS},
	})
}

// mfaCall calls the self-service API with an access token ("" for none)
// from a page on origin ("" for no Origin header).
func (h *hfixture) mfaCall(t *testing.T, method, path, token, origin string, body any) apiResult {
	t.Helper()
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	return callJSON(t, method, h.s.URL+mfaAPI+path, body, "Authorization", auth, "Origin", origin)
}

func (h *hfixture) mfa(t *testing.T, method, path, token string, body any) apiResult {
	t.Helper()
	return h.mfaCall(t, method, path, token, "", body)
}

// mfaStatus reads GET /account/api/mfa, failing unless it answers 200.
func (h *hfixture) mfaStatus(t *testing.T, token string) apiResult {
	t.Helper()
	r := h.mfa(t, http.MethodGet, "", token, nil)
	if _, ok := r.body["totp"].(bool); r.status != http.StatusOK || !ok {
		t.Fatalf("status: %d %v", r.status, r.body)
	}
	return r
}

// mfaToken signs u in to the first-party client "app" in browser b with
// scope "openid stile:mfa" (extra authorization parameters override or add
// to that) and exchanges the code. code gives the one-time code once the
// code page shows.
func (h *hfixture) mfaToken(t *testing.T, b *browser, u *user, code func() string, extra ...string) *oauth2.Token {
	t.Helper()
	az := h.rp.authorize(append([]string{"scope", "openid " + op.ScopeMFA}, extra...)...)
	loc := h.finish(t, b, h.otpPage(t, b, az, u), code())
	if loc.Query().Get("state") != az.state {
		t.Fatalf("state %q, want %q", loc.Query().Get("state"), az.state)
	}
	return h.tokens(t, loc.Query().Get("code"), az)
}

// totpOf is u's current TOTP code, as an authenticator app would show it
// (computed independently of stile, with github.com/pquerna/otp).
func (h *hfixture) totpOf(t *testing.T, secret string) string {
	t.Helper()
	c, err := login.TOTPCode(secret, h.s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (h *hfixture) totpCode(t *testing.T, u *user) func() string {
	return func() string { return h.totpOf(t, u.totpSecret) }
}

// scopesOf reads the scope claim of a JWT access token.
func scopesOf(t *testing.T, tok *oauth2.Token) []string {
	t.Helper()
	return strings.Fields(claimOf(t, tok.AccessToken, "scope"))
}

// mailTo returns the decoded text (subject and body) of every mail sent to
// the address so far.
func (mb *mailbox) mailTo(t *testing.T, to string) []string {
	t.Helper()
	var out []string
	for _, m := range mb.sent(to) {
		out = append(out, decodeMail(t, m))
	}
	return out
}

// decodeMail undoes the transfer encoding, so a secret split across
// quoted-printable lines would still be seen.
func decodeMail(t *testing.T, raw string) string {
	t.Helper()
	m, err := netmail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("not a mail message: %v\n%s", err, raw)
	}
	var body io.Reader = m.Body
	switch strings.ToLower(m.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		body = quotedprintable.NewReader(m.Body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, m.Body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("mail body: %v\n%s", err, raw)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return subject + "\n" + string(b)
}

// notices checks that exactly n mails reached to since before of them had,
// that one of them says want, and that none carries any of the secrets
// (with or without a recovery code's hyphen). It returns the new mails.
func (h *hfixture) notices(t *testing.T, to string, before, n int, want string, secrets ...string) []string {
	t.Helper()
	all := h.mail.mailTo(t, to)
	if len(all) != before+n {
		t.Fatalf("%d mails to %s, want %d: %q", len(all)-before, to, n, all[min(before, len(all)):])
	}
	got := all[before:]
	if n > 0 && !slices.ContainsFunc(got, func(m string) bool { return strings.Contains(m, want) }) {
		t.Fatalf("no mail to %s says %q: %q", to, want, got)
	}
	for _, m := range got {
		for _, s := range secrets {
			if s != "" && (strings.Contains(m, s) || strings.Contains(m, strings.ReplaceAll(s, "-", ""))) {
				t.Fatalf("a notice to %s carries the secret or code %q:\n%s", to, s, m)
			}
		}
	}
	return got
}

func (h *hfixture) user(t *testing.T, id string) *storage.User {
	t.Helper()
	u, err := h.s.db.GetUser(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// storedTOTP is the secret stile holds for the user ("" for none).
func (h *hfixture) storedTOTP(t *testing.T, userID string) string {
	t.Helper()
	_, secret, err := login.OpenTOTP(t.Context(), h.s.db, h.s.sealer, userID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	return secret
}

// unauthorized checks a 401 with the error code and a Bearer challenge
// naming the scope.
func unauthorized(t *testing.T, what string, r apiResult) {
	t.Helper()
	expect(t, what, r, http.StatusUnauthorized, string(login.CodeUnauthorized))
	if ch := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `scope="`+op.ScopeMFA+`"`) {
		t.Fatalf("%s: WWW-Authenticate %q, want a Bearer challenge for %s", what, ch, op.ScopeMFA)
	}
}

func testSelfServiceUnauthorized(t *testing.T, h *hfixture) {
	unauthorized(t, "no token", h.mfa(t, http.MethodGet, "", "", nil))
	unauthorized(t, "no token, a change", h.mfa(t, http.MethodPost, "/recovery-codes", "", nil))
	unauthorized(t, "a garbage token", h.mfa(t, http.MethodGet, "", "not-a-token", nil))

	// Positive control: app's token with the scope reads the status.
	tok := h.mfaToken(t, newBrowser(t, h.s), h.alice, h.totpCode(t, h.alice))
	if !slices.Contains(scopesOf(t, tok), op.ScopeMFA) {
		t.Fatalf("the first-party client was not granted %s: %v", op.ScopeMFA, scopesOf(t, tok))
	}
	h.mfaStatus(t, tok.AccessToken)
	unauthorized(t, "a tampered token", h.mfa(t, http.MethodGet, "", tok.AccessToken[:len(tok.AccessToken)-4]+"AAAA", nil))

	// The same client and user without the scope.
	h.nextStep()
	plain := h.mfaToken(t, newBrowser(t, h.s), h.alice, h.totpCode(t, h.alice), "scope", "openid profile")
	if slices.Contains(scopesOf(t, plain), op.ScopeMFA) {
		t.Fatalf("scope %v", scopesOf(t, plain))
	}
	unauthorized(t, "a token without stile:mfa", h.mfa(t, http.MethodGet, "", plain.AccessToken, nil))
	unauthorized(t, "a token without stile:mfa, a change", h.mfa(t, http.MethodPost, "/totp", plain.AccessToken, nil))

	// A third-party client asking for the scope: it is silently left out
	// (never shown for consent, never granted), so its token is refused.
	partner := h.partner(t)
	h.nextStep()
	b := newBrowser(t, h.s)
	az := partner.authorize("scope", "openid "+op.ScopeMFA)
	p := h.consentPage(t, b, az, true)
	if strings.Contains(p.body, op.ScopeMFA) || strings.Contains(strings.ToLower(p.body), "second factor") {
		t.Errorf("the consent page offers the third party %s:\n%s", op.ScopeMFA, p.body)
	}
	ptok, err := partner.exchange(decide(t, b, p, "allow").Query().Get("code"), az.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if got := scopesOf(t, ptok); slices.Contains(got, op.ScopeMFA) || !slices.Contains(got, "openid") {
		t.Fatalf("third-party token scope %v, want openid without %s", got, op.ScopeMFA)
	}
	if info, err := partner.userinfo(ptok); err != nil || info["sub"] != h.alice.ID {
		t.Fatalf("the third party's token is not a working token: %v %v", info, err)
	}
	unauthorized(t, "a third party's token", h.mfa(t, http.MethodGet, "", ptok.AccessToken, nil))

	// A client that stops being first-party: its live tokens stop working here.
	h.mfaStatus(t, tok.AccessToken)
	setFirstParty := func(v bool) {
		if _, err := h.s.db.UpdateClient(t.Context(), "app", func(c *storage.Client) error { c.FirstParty = v; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	setFirstParty(false)
	unauthorized(t, "a token of a client no longer first-party", h.mfa(t, http.MethodGet, "", tok.AccessToken, nil))
	setFirstParty(true)
	h.mfaStatus(t, tok.AccessToken)

	// A revoked token.
	if st := h.revoke(t, tok.AccessToken, "access_token", "app", h.secret); st != http.StatusOK {
		t.Fatalf("revoke: %d", st)
	}
	unauthorized(t, "a revoked token", h.mfa(t, http.MethodGet, "", tok.AccessToken, nil))
	unauthorized(t, "a revoked token, a change", h.mfa(t, http.MethodPost, "/recovery-codes", tok.AccessToken, nil))
	if n := len(h.mail.mailTo(t, h.alice.Email)); n != 0 {
		t.Fatalf("refused calls sent %d mails", n)
	}
}

func testSelfServiceStepUp(t *testing.T, h *hfixture) {
	// The default access token lives 10 minutes, as long as a sign-in
	// counts as recent: give app's tokens an hour, so a live token can
	// outlive its sign-in's recency.
	if _, err := h.s.db.UpdateClient(t.Context(), "app", func(c *storage.Client) error {
		c.AccessTokenLifetime = storage.Seconds(time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, h.s)
	tok := h.mfaToken(t, b, h.alice, h.totpCode(t, h.alice), "scope", "openid offline_access "+op.ScopeMFA)
	if time.Until(tok.Expiry) < 50*time.Minute || tok.RefreshToken == "" {
		t.Fatalf("access token expires at %s, want an hour; refresh token %q", tok.Expiry, tok.RefreshToken)
	}
	h.mfaStatus(t, tok.AccessToken)
	h.s.clock.Advance(9 * time.Minute)
	h.mfaStatus(t, tok.AccessToken) // 9 minutes: still recent

	h.s.clock.Advance(2 * time.Minute) // 11 minutes
	stepUp := string(login.CodeStepUpRequired)
	expect(t, "11 minutes after the sign-in", h.mfa(t, http.MethodGet, "", tok.AccessToken, nil), http.StatusForbidden, stepUp)
	// A refreshed token carries the sign-in's time, not the refresh's.
	status, refreshed := h.refresh(t, tok.RefreshToken, "app", h.secret)
	access, _ := refreshed["access_token"].(string)
	if status != http.StatusOK || !slices.Contains(strings.Fields(claimOf(t, access, "scope")), op.ScopeMFA) {
		t.Fatalf("refresh: %d %v", status, refreshed)
	}
	expect(t, "a token refreshed 11 minutes after the sign-in", h.mfa(t, http.MethodGet, "", access, nil), http.StatusForbidden, stepUp)
	expect(t, "a change 11 minutes after the sign-in", h.mfa(t, http.MethodPost, "/totp", tok.AccessToken, nil), http.StatusForbidden, stepUp)
	expect(t, "recovery codes 11 minutes after the sign-in", h.mfa(t, http.MethodPost, "/recovery-codes", tok.AccessToken, nil), http.StatusForbidden, stepUp)
	if left, _ := h.s.db.RecoveryCodesLeft(t.Context(), h.alice.ID); left != 0 {
		t.Fatalf("a refused call made %d recovery codes", left)
	}
	if _, err := h.s.db.PendingTOTP(t.Context(), h.alice.ID); err == nil {
		t.Fatal("a refused call left a pending authenticator")
	}

	// A new token from the SSO session keeps the old sign-in's auth_time:
	// still too old.
	az := h.rp.authorize("scope", "openid "+op.ScopeMFA)
	silent := h.tokens(t, h.silent(t, b, az), az)
	expect(t, "a silent re-authorization", h.mfa(t, http.MethodGet, "", silent.AccessToken, nil), http.StatusForbidden, stepUp)

	// A fresh sign-in (prompt=login) works again.
	fresh := h.mfaToken(t, b, h.alice, h.totpCode(t, h.alice), "prompt", "login")
	h.mfaStatus(t, fresh.AccessToken)
	h.nextStep() // the sign-in used this step's code; new codes take a fresh one (doors_test.go)
	expect(t, "recovery codes after a fresh sign-in", h.mfa(t, http.MethodPost, "/recovery-codes", fresh.AccessToken,
		map[string]string{"otp": h.totpOf(t, h.alice.totpSecret)}), http.StatusOK, "")
	// The sign-in replaced the browser's session, and so revoked the tokens
	// issued from it.
	unauthorized(t, "a token of the replaced session", h.mfa(t, http.MethodGet, "", tok.AccessToken, nil))

	// So does max_age, the other remedy the error names.
	h.s.clock.Advance(11 * time.Minute)
	expect(t, "11 minutes after the fresh sign-in", h.mfa(t, http.MethodGet, "", fresh.AccessToken, nil), http.StatusForbidden, stepUp)
	again := h.mfaToken(t, b, h.alice, h.totpCode(t, h.alice), "max_age", "600")
	h.mfaStatus(t, again.AccessToken)
}

func testSelfServiceTOTP(t *testing.T, h *hfixture) {
	alice := h.alice
	tok := h.mfaToken(t, newBrowser(t, h.s), alice, h.totpCode(t, alice)).AccessToken
	st := h.mfaStatus(t, tok)
	if st.body["totp"] != true || st.body["email"] != true || st.body["sms"] != false || st.str("preferred") != "" ||
		st.body["recoveryCodesLeft"] != float64(0) {
		t.Fatalf("status: %v", st.body)
	}
	mails := len(h.mail.mailTo(t, alice.Email))

	// A new authenticator to scan; nothing changes until it is confirmed.
	h.nextStep() // a new authenticator takes a fresh code from the current one (doors_test.go)
	add := h.mfa(t, http.MethodPost, "/totp", tok, map[string]string{"otp": h.totpOf(t, alice.totpSecret)})
	expect(t, "add TOTP", add, http.StatusOK, "")
	secret := add.str("secret")
	if len(secret) < 32 || secret == alice.totpSecret || !strings.HasPrefix(add.str("otpauthURL"), "otpauth://totp/") ||
		!strings.Contains(add.str("otpauthURL"), "secret="+secret) {
		t.Fatalf("add TOTP: %v", add.body)
	}
	qr, ok := strings.CutPrefix(add.str("qr"), "data:image/png;base64,")
	if png, err := base64.StdEncoding.DecodeString(qr); !ok || err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("qr is not a PNG data URL: %.60q", add.str("qr"))
	}
	if add.header.Get("Cache-Control") != "no-store" {
		t.Errorf("the secret's response has Cache-Control %q", add.header.Get("Cache-Control"))
	}
	h.notices(t, alice.Email, mails, 0, "")

	// A wrong first code is refused; alice's authenticator is unchanged.
	right := h.totpOf(t, secret)
	expect(t, "a wrong first code", h.mfa(t, http.MethodPost, "/totp/confirm", tok, map[string]string{"otp": wrongCode(right)}),
		http.StatusForbidden, string(login.CodeInvalidOTP))
	if h.storedTOTP(t, alice.ID) != alice.totpSecret {
		t.Fatal("a wrong first code changed the user's authenticator")
	}
	h.notices(t, alice.Email, mails, 0, "")

	// The right one makes it alice's, once.
	expect(t, "the right first code", h.mfa(t, http.MethodPost, "/totp/confirm", tok, map[string]string{"otp": right}), http.StatusOK, "")
	if h.storedTOTP(t, alice.ID) != secret {
		t.Fatal("the confirmed authenticator is not the user's")
	}
	h.notices(t, alice.Email, mails, 1, "An authenticator app was added", secret, alice.totpSecret, right)
	mails++
	expect(t, "the first code again", h.mfa(t, http.MethodPost, "/totp/confirm", tok, map[string]string{"otp": right}),
		http.StatusGone, string(login.CodeExpired))

	// Signing in: the old authenticator's code is refused, the new one's works.
	old := alice.totpSecret
	alice.totpSecret = secret
	h.nextStep()
	if h.totpOf(t, old) == h.totpOf(t, secret) {
		h.nextStep() // the two happen to agree (1 in a million)
	}
	b := newBrowser(t, h.s)
	az := h.rp.authorize()
	p := h.otpPage(t, b, az, alice)
	if r := b.submit(p, map[string]string{"otp": h.totpOf(t, old)}); r.status != http.StatusForbidden {
		t.Fatalf("the old authenticator's code at sign-in: status %d, want 403", r.status)
	}
	h.rp.idClaims(h.tokens(t, h.finish(t, b, p, h.totpOf(t, secret)).Query().Get("code"), az), az.nonce)

	// Removing it takes a current code: a wrong one is refused.
	h.nextStep()
	code := h.totpOf(t, secret)
	expect(t, "remove with a wrong code", h.mfa(t, http.MethodDelete, "/totp", tok, map[string]string{"otp": wrongCode(code)}),
		http.StatusForbidden, string(login.CodeInvalidOTP))
	expect(t, "remove without a code", h.mfa(t, http.MethodDelete, "/totp", tok, map[string]string{}),
		http.StatusForbidden, string(login.CodeInvalidOTP))
	if st := h.mfaStatus(t, tok); st.body["totp"] != true || h.storedTOTP(t, alice.ID) != secret {
		t.Fatalf("a refused removal removed the authenticator: %v", st.body)
	}
	h.notices(t, alice.Email, mails, 0, "")
	expect(t, "remove with the current code", h.mfa(t, http.MethodDelete, "/totp", tok, map[string]string{"otp": code}), http.StatusOK, "")
	h.notices(t, alice.Email, mails, 1, "authenticator app was removed", secret, code)
	if st := h.mfaStatus(t, tok); st.body["totp"] != false || h.storedTOTP(t, alice.ID) != "" {
		t.Fatalf("after removal: %v", st.body)
	}
	// With nothing left, the app's sign-in has no second step to offer.
	b = newBrowser(t, h.s)
	r := b.submit(h.passwordPage(t, b, h.rp.authorize()), map[string]string{"username": alice.Username, "password": alice.password})
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "no second factor") {
		t.Fatalf("sign-in after removal: %d %s", r.status, r.url)
	}
}

func testSelfServiceRecoveryCodes(t *testing.T, h *hfixture) {
	alice := h.alice
	tok := h.mfaToken(t, newBrowser(t, h.s), alice, h.totpCode(t, alice)).AccessToken
	mails := len(h.mail.mailTo(t, alice.Email))
	newCodes := func() []string {
		t.Helper()
		h.nextStep() // new codes take a fresh code from the authenticator (doors_test.go)
		r := h.mfa(t, http.MethodPost, "/recovery-codes", tok, map[string]string{"otp": h.totpOf(t, alice.totpSecret)})
		expect(t, "recovery codes", r, http.StatusOK, "")
		codes := toStrings(r.body["codes"])
		if len(codes) != 10 || len(slices.Compact(slices.Sorted(slices.Values(codes)))) != 10 {
			t.Fatalf("recovery codes: %v", r.body)
		}
		for _, c := range codes {
			if len(c) != 11 || c[5] != '-' {
				t.Fatalf("recovery code %q, want xxxxx-xxxxx", c)
			}
		}
		h.notices(t, alice.Email, mails, 1, "New recovery codes", codes...)
		mails++
		if st := h.mfaStatus(t, tok); st.body["recoveryCodesLeft"] != float64(10) {
			t.Fatalf("status after new codes: %v", st.body)
		}
		return codes
	}
	first := newCodes()
	second := newCodes()
	if slices.ContainsFunc(second, func(c string) bool { return slices.Contains(first, c) }) {
		t.Fatalf("the new set repeats an old code: %v %v", first, second)
	}

	// The old set no longer works: not to remove the authenticator…
	expect(t, "remove with an old recovery code", h.mfa(t, http.MethodDelete, "/totp", tok, map[string]string{"otp": first[0]}),
		http.StatusForbidden, string(login.CodeInvalidOTP))
	if st := h.mfaStatus(t, tok); st.body["totp"] != true || st.body["recoveryCodesLeft"] != float64(10) {
		t.Fatalf("after an old recovery code: %v", st.body)
	}
	// …nor to sign in; a new one does, once.
	h.nextStep()
	signInWith := func(code string) (*page, *authorization) {
		t.Helper()
		b := newBrowser(t, h.s)
		az := h.rp.authorize()
		return b.submit(h.otpPage(t, b, az, alice), map[string]string{"otp": code}), az
	}
	if r, _ := signInWith(first[1]); r.status != http.StatusForbidden {
		t.Fatalf("sign-in with an old recovery code: status %d, want 403", r.status)
	}
	r, az := signInWith(second[0])
	h.tokens(t, r.location(t).Query().Get("code"), az)
	if st := h.mfaStatus(t, tok); st.body["recoveryCodesLeft"] != float64(9) {
		t.Fatalf("after using a recovery code: %v", st.body)
	}
	mails++ // the notice that a recovery code was used
	if r, _ := signInWith(second[0]); r.status != http.StatusForbidden {
		t.Fatalf("sign-in with a used recovery code: status %d, want 403", r.status)
	}

	// A new recovery code removes the authenticator.
	expect(t, "remove with a recovery code", h.mfa(t, http.MethodDelete, "/totp", tok, map[string]string{"otp": second[1]}), http.StatusOK, "")
	h.notices(t, alice.Email, mails, 2, "authenticator app was removed", second...)
	if st := h.mfaStatus(t, tok); st.body["totp"] != false || st.body["recoveryCodesLeft"] != float64(8) {
		t.Fatalf("after removing with a recovery code: %v", st.body)
	}
	mails += 2
	// With no authenticator left, a removal spends no recovery code.
	expect(t, "remove nothing with a recovery code", h.mfa(t, http.MethodDelete, "/totp", tok, map[string]string{"otp": second[2]}),
		http.StatusForbidden, string(login.CodeNoSecondFactor))
	if st := h.mfaStatus(t, tok); st.body["recoveryCodesLeft"] != float64(8) {
		t.Fatalf("a removal of nothing spent a recovery code: %v", st.body)
	}
	h.notices(t, alice.Email, mails, 0, "")
}

func testSelfServicePreferred(t *testing.T, h *hfixture) {
	alice := h.alice
	tok := h.mfaToken(t, newBrowser(t, h.s), alice, h.totpCode(t, alice)).AccessToken
	mails := len(h.mail.mailTo(t, alice.Email))
	prefer := func(token, method string) apiResult {
		t.Helper()
		return h.mfa(t, http.MethodPut, "/preferred", token, map[string]string{"method": method})
	}
	// alice has TOTP and an email address, no phone.
	for _, m := range []string{login.MethodSMS, "VOICE", "totp", login.MethodRecovery, ""} {
		expect(t, "preferred "+m, prefer(tok, m), http.StatusBadRequest, string(login.CodeInvalidRequest))
	}
	if p := h.user(t, alice.ID).Preferred; p != "" {
		t.Fatalf("refused choices changed the preferred method to %q", p)
	}
	h.notices(t, alice.Email, mails, 0, "")

	expect(t, "preferred EMAIL", prefer(tok, login.MethodEmail), http.StatusOK, "")
	if p := h.user(t, alice.ID).Preferred; p != login.MethodEmail || h.mfaStatus(t, tok).str("preferred") != login.MethodEmail {
		t.Fatalf("preferred %q, want EMAIL", p)
	}
	h.notices(t, alice.Email, mails, 1, "second factor")
	mails++
	// The next sign-in asks for an emailed code.
	b := newBrowser(t, h.s)
	az := h.rp.authorize()
	p := h.otpPage(t, b, az, alice)
	if !strings.Contains(p.body, "a•••@example.com") {
		t.Fatalf("with EMAIL preferred, the code page says:\n%s", p.body)
	}
	h.tokens(t, h.finish(t, b, p, codeIn(t, h.mail.last(t, alice.Email, "sign-in code"))).Query().Get("code"), az)
	mails++

	expect(t, "preferred TOTP", prefer(tok, login.MethodTOTP), http.StatusOK, "")
	if p := h.user(t, alice.ID).Preferred; p != login.MethodTOTP {
		t.Fatalf("preferred %q, want TOTP", p)
	}
	h.notices(t, alice.Email, mails, 1, "second factor")
	mails++
	// Without an authenticator, TOTP is no longer a choice.
	h.nextStep()
	expect(t, "remove TOTP", h.mfa(t, http.MethodDelete, "/totp", tok, map[string]string{"otp": h.totpOf(t, alice.totpSecret)}), http.StatusOK, "")
	mails++
	expect(t, "preferred TOTP without an authenticator", prefer(tok, login.MethodTOTP), http.StatusBadRequest, string(login.CodeInvalidRequest))
	expect(t, "preferred EMAIL still", prefer(tok, login.MethodEmail), http.StatusOK, "")
	h.notices(t, alice.Email, mails, 1, "second factor")

	// sam has a phone and no authenticator: SMS is a choice, TOTP is not.
	sam := h.sam
	samTok := h.mfaToken(t, newBrowser(t, h.s), sam, func() string { m, _ := h.sms.last(t, sam.Phone); return codeIn(t, m) }).AccessToken
	if st := h.mfaStatus(t, samTok); st.body["sms"] != true || st.body["totp"] != false || st.str("preferred") != login.MethodSMS {
		t.Fatalf("sam's status: %v", st.body)
	}
	samMails := len(h.mail.mailTo(t, sam.Email))
	expect(t, "sam prefers TOTP", prefer(samTok, login.MethodTOTP), http.StatusBadRequest, string(login.CodeInvalidRequest))
	expect(t, "sam prefers EMAIL", prefer(samTok, login.MethodEmail), http.StatusOK, "")
	expect(t, "sam prefers SMS", prefer(samTok, login.MethodSMS), http.StatusOK, "")
	if p := h.user(t, sam.ID).Preferred; p != login.MethodSMS {
		t.Fatalf("sam's preferred %q, want SMS", p)
	}
	h.notices(t, sam.Email, samMails, 2, "second factor")
}

func testSelfServiceCORS(t *testing.T, h *hfixture) {
	const evil = "https://evil.example.com"
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, ""}, {http.MethodPost, "/totp"}, {http.MethodPost, "/totp/confirm"}, {http.MethodDelete, "/totp"},
		{http.MethodPost, "/recovery-codes"}, {http.MethodPut, "/preferred"},
	} {
		for origin, want := range map[string]string{customOrigin: customOrigin, evil: ""} {
			req, _ := http.NewRequest(http.MethodOptions, h.s.URL+mfaAPI+c.path, nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", c.method)
			req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			what := "preflight of " + c.method + " " + mfaAPI + c.path + " from " + origin
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("%s: Allow-Origin %q, want %q, and no Allow-Credentials (got %q)", what, got, want,
					resp.Header.Get("Access-Control-Allow-Credentials"))
			}
			if resp.StatusCode/100 != 2 {
				t.Errorf("%s: status %d", what, resp.StatusCode)
			}
			if want != "" && (!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), c.method) ||
				!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")) {
				t.Errorf("%s: Allow-Methods %q Allow-Headers %q", what, resp.Header.Get("Access-Control-Allow-Methods"),
					resp.Header.Get("Access-Control-Allow-Headers"))
			}
		}
	}
	// The calls themselves: readable from the registered origin (errors
	// too), never with credentials; not from another.
	tok := h.mfaToken(t, newBrowser(t, h.s), h.alice, h.totpCode(t, h.alice)).AccessToken
	ok := h.mfaCall(t, http.MethodGet, "", tok, customOrigin, nil)
	if ok.status != http.StatusOK || ok.header.Get("Access-Control-Allow-Origin") != customOrigin ||
		ok.header.Get("Access-Control-Allow-Credentials") != "" || ok.header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET from %s: %d %v", customOrigin, ok.status, ok.header)
	}
	denied := h.mfaCall(t, http.MethodGet, "", "", customOrigin, nil)
	if unauthorized(t, "no token from "+customOrigin, denied); denied.header.Get("Access-Control-Allow-Origin") != customOrigin {
		t.Errorf("a 401 to %s is not readable by it: %v", customOrigin, denied.header)
	}
	if r := h.mfaCall(t, http.MethodGet, "", tok, evil, nil); r.header.Get("Access-Control-Allow-Origin") != "" ||
		r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("GET from %s: %v", evil, r.header)
	}
}
