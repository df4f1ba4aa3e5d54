package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

const (
	customOrigin   = "https://login.example.com"
	customRedirect = "https://spa.example.com/cb"
)

// hfixture is stile with real senders — an SMTP server and an SMS
// webhook — and a client "custom" whose login page (on customOrigin) uses
// the JSON API. Users: alice (TOTP), emma (email preferred), sam (SMS
// preferred), nora (no second factor).
type hfixture struct {
	*fixture
	mail            *mailbox
	sms             *smsGateway
	emma, sam, nora *user
	custom          *relyingParty
	customSecret    string
	pages           loginPages // what the custom login page was given at each hand-off
}

// loginPages records the loginToken that each hand-off gave the custom
// login page, by authRequestID: the tests play that page, which reads it
// from its address.
type loginPages struct {
	mu     sync.Mutex
	tokens map[string]string
}

func (p *loginPages) put(arID, token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tokens == nil {
		p.tokens = map[string]string{}
	}
	p.tokens[arID] = token
}

// loginToken is the loginToken the login page got beside arID ("" if none).
func (h *hfixture) loginToken(arID string) string {
	h.pages.mu.Lock()
	defer h.pages.mu.Unlock()
	return h.pages.tokens[arID]
}

func newHeadless(t *testing.T, dbURL string) *hfixture {
	mb, gw := newMailbox(t), newSMSGateway(t)
	return seedHeadless(t, startServer(t, dbURL, delivery(t, mb, gw)), mb, gw)
}

// delivery sends stile's mail to mb and its texts to gw.
func delivery(t *testing.T, mb *mailbox, gw *smsGateway) func(*appConfig) {
	return func(c *appConfig) {
		c.Delivery = login.Delivery{Email: &login.SMTP{Host: mb.host, Port: mb.port, TLS: "none", From: "stile <no-reply@example.com>"},
			SMS: &login.Webhook{URL: gw.url, Token: "gateway-token"}, EmailFactor: true, CodeLifetime: 5 * time.Minute,
			ResendAfter: 30 * time.Second}
	}
}

// seedHeadless registers hfixture's clients and users on s.
func seedHeadless(t *testing.T, s *server, mb *mailbox, gw *smsGateway) *hfixture {
	f := &fixture{s: s}
	f.secret = s.addClient(t, &storage.Client{ID: "app", Name: "Example App", Type: storage.ClientWeb, FirstParty: true,
		RedirectURIs: storage.Strings{appRedirect}, RequirePKCE: true, Audiences: storage.Strings{apiAudience},
		GrantTypes: storage.Strings{storage.GrantAuthorizationCode, storage.GrantRefreshToken}})
	f.alice = s.addUser(t, "alice", true)
	f.rp = newRP(t, s, "app", f.secret, appRedirect)
	h := &hfixture{fixture: f, mail: mb, sms: gw}
	h.customSecret = s.addClient(t, &storage.Client{ID: "custom", Name: "Custom Login", Type: storage.ClientWeb, FirstParty: true,
		RedirectURIs: storage.Strings{customRedirect}, RequirePKCE: true, LoginURL: customOrigin + "/",
		WebOrigins: storage.Strings{customOrigin}, EnrollmentPolicy: storage.EnrollEmailThenTOTP})
	h.custom = newRP(t, s, "custom", h.customSecret, customRedirect)
	h.emma = h.userWith(t, "emma", func(u *storage.User) { u.Preferred = login.MethodEmail })
	h.sam = h.userWith(t, "sam", func(u *storage.User) { u.Phone, u.Preferred = "+44 7700 900123", login.MethodSMS })
	h.nora = h.userWith(t, "nora", func(*storage.User) {})
	return h
}

func (h *hfixture) userWith(t *testing.T, name string, change func(*storage.User)) *user {
	u := h.s.addUser(t, name, false)
	got, err := h.s.db.UpdateUser(t.Context(), u.ID, func(s *storage.User) error { change(s); return nil })
	if err != nil {
		t.Fatal(err)
	}
	u.User = got
	return u
}

// apiResult is a JSON API answer.
type apiResult struct {
	status int
	header http.Header
	body   map[string]any
}

func (r apiResult) str(k string) string { s, _ := r.body[k].(string); return s }

// call posts JSON to stile from a page on origin ("" for no Origin header).
func (h *hfixture) call(t *testing.T, path, origin string, body any) apiResult {
	t.Helper()
	return callJSON(t, http.MethodPost, h.s.URL+path, body, "Origin", origin)
}

// callJSON sends body (nil for none) as JSON with the headers given as
// name, value pairs (an empty value is left out) and decodes the answer.
func callJSON(t *testing.T, method, url string, body any, header ...string) apiResult {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] != "" {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := apiResult{status: resp.StatusCode, header: resp.Header}
	json.NewDecoder(resp.Body).Decode(&r.body)
	return r
}

// resendUntilNew waits out the cooldown and has emma's code resent, again
// in the one-in-a-million case that the new code equals old.
func (h *hfixture) resendUntilNew(t *testing.T, tx, old string) string {
	t.Helper()
	for range 3 {
		h.s.clock.Advance(31 * time.Second)
		expect(t, "resend", h.call(t, "/login/api/resend", customOrigin, map[string]string{"transactionID": tx}), http.StatusOK, "")
		if code := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code")); code != old {
			return code
		}
	}
	t.Fatal("three resent codes all equal the first")
	return ""
}

// recoveryCodes gives u ten new recovery codes through the CLI.
func (h *hfixture) recoveryCodes(t *testing.T, u *user) []string {
	t.Helper()
	var rc map[string]any
	jsonInto(t, h.s.stile(t, "user", "recovery-codes", u.Username, "--json"), &rc)
	codes := toStrings(rc["codes"])
	if len(codes) != 10 {
		t.Fatalf("recovery codes: %v", rc)
	}
	return codes
}

// expect checks an API answer's status and, for errors, its error code.
func expect(t *testing.T, what string, r apiResult, status int, code string) {
	t.Helper()
	if r.status != status || (code != "" && r.str("error") != code) || (code == "" && r.str("status") != "SUCCESS") {
		t.Fatalf("%s: %d %v, want %d %s", what, r.status, r.body, status, code)
	}
}

// handoff starts an authorization for "custom" in browser b and returns the
// request ID its login page receives. The page's loginToken is kept for
// authBody (h.loginToken).
func (h *hfixture) handoff(t *testing.T, b *browser) (string, *authorization) {
	t.Helper()
	az := h.custom.authorize()
	return h.openLogin(t, b, az.url), az
}

// openLogin opens rawURL (/authorize or /login) in b, which must end on the
// custom login page with authRequestID and loginToken; it records the
// token and returns the request ID.
func (h *hfixture) openLogin(t *testing.T, b *browser, rawURL string) string {
	t.Helper()
	loc := b.get(rawURL).location(t)
	arID, token := loc.Query().Get("authRequestID"), loc.Query().Get("loginToken")
	if loc.Scheme+"://"+loc.Host != customOrigin || arID == "" || token == "" {
		t.Fatalf("the hand-off went to %s, want the client's login page with authRequestID and loginToken", loc)
	}
	h.pages.put(arID, token)
	return arID
}

// authBody is the login page's authenticate call for arID, with the
// loginToken its hand-off gave the page.
func (h *hfixture) authBody(arID, username, password string) map[string]string {
	return map[string]string{"authRequestID": arID, "loginToken": h.loginToken(arID), "username": username, "password": password}
}

// authenticate is the login page's first call.
func (h *hfixture) authenticate(t *testing.T, arID string, u *user) apiResult {
	t.Helper()
	return h.call(t, "/login/api/authenticate", customOrigin, h.authBody(arID, u.Username, u.password))
}

// finishAPI follows the verify answer's redirectURI in the browser and
// exchanges the code as the client would; it returns the tokens.
func (h *hfixture) finishAPI(t *testing.T, b *browser, az *authorization, verified apiResult) *oauth2.Token {
	t.Helper()
	expect(t, "verify", verified, http.StatusOK, "")
	loc := b.get(verified.str("redirectURI")).location(t)
	if loc.Query().Get("iss") != h.s.URL || loc.Query().Get("state") != az.state {
		t.Fatalf("the callback sent %s", loc)
	}
	tok, err := h.custom.exchange(loc.Query().Get("code"), az.verifier)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	h.custom.idClaims(tok, az.nonce)
	return tok
}

// TestJSONLoginAPI signs in through a custom login page's calls, with each
// second-factor method, on SQLite and PostgreSQL.
func TestJSONLoginAPI(t *testing.T) {
	runHeadless(t, []hscenario{
		{"TOTP", testAPITOTP},
		{"Email", testAPIEmail},
		{"SMS", testAPISMS},
		{"Recovery", testAPIRecovery},
		{"EnrolmentPolicies", testAPIEnrolment},
		{"RolePolicies", testAPIRolePolicies},
		{"Errors", testAPIErrors},
		{"Origins", testAPIOrigins},
	})
}

// hscenario is a test on a fresh hfixture.
type hscenario struct {
	name string
	fn   func(*testing.T, *hfixture)
}

// runHeadless runs each scenario on its own server, on SQLite and on
// PostgreSQL.
func runHeadless(t *testing.T, scenarios []hscenario) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { sc.fn(t, newHeadless(t, d.URL(t))) })
			}
		})
	}
}

func testAPITOTP(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	arID, az := h.handoff(t, b)
	r := h.authenticate(t, arID, h.alice)
	expect(t, "authenticate", r, http.StatusOK, "")
	if r.str("authType") != login.MethodTOTP || r.str("transactionID") == "" {
		t.Fatalf("authenticate: %v", r.body)
	}
	v := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": h.s.code(t, h.alice)})
	claims := h.custom.idClaims(h.finishAPI(t, b, az, v), az.nonce)
	if claims["uid"] != h.alice.ID || strings.Join(toStrings(claims["amr"]), " ") != "pwd otp mfa" {
		t.Fatalf("claims %v", claims)
	}
	// The browser now has an SSO session: the next authorization is silent.
	az = h.custom.authorize()
	if loc := b.get(az.url).location(t); loc.Query().Get("code") == "" {
		t.Fatalf("after a JSON API sign-in, the next authorization went to %s", loc)
	}
}

func testAPIEmail(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	arID, az := h.handoff(t, b)
	r := h.authenticate(t, arID, h.emma)
	expect(t, "authenticate", r, http.StatusOK, "")
	if r.str("authType") != login.MethodEmail || !strings.Contains(r.str("message"), "e•••@example.com") {
		t.Fatalf("authenticate: %v", r.body)
	}
	first := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	tx := r.str("transactionID")

	// A resend before the cooldown is throttled; after it, a new code replaces the old.
	rs := h.call(t, "/login/api/resend", customOrigin, map[string]string{"transactionID": tx})
	if expect(t, "early resend", rs, http.StatusTooManyRequests, "throttled"); rs.header.Get("Retry-After") == "" {
		t.Fatal("throttled resend without Retry-After")
	}
	second := h.resendUntilNew(t, tx, first)
	expect(t, "the replaced code", h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": tx, "otp": first}),
		http.StatusForbidden, "invalid_otp")
	v := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": tx, "otp": second})
	claims := h.custom.idClaims(h.finishAPI(t, b, az, v), az.nonce)
	if claims["uid"] != h.emma.ID {
		t.Fatalf("claims %v", claims)
	}
	// A used code is refused afterwards: the transaction is over.
	expect(t, "the used code again", h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": tx, "otp": second}),
		http.StatusGone, "transaction_expired")

	// An emailed code expires after 5 minutes.
	b = newBrowser(t, h.s)
	arID, _ = h.handoff(t, b)
	r = h.authenticate(t, arID, h.emma)
	code := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	h.s.clock.Advance(5*time.Minute + time.Second)
	expect(t, "expired code", h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": code}),
		http.StatusForbidden, "invalid_otp")
}

func testAPISMS(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	arID, az := h.handoff(t, b)
	r := h.authenticate(t, arID, h.sam)
	if r.str("authType") != login.MethodSMS || !strings.Contains(r.str("message"), "0123") {
		t.Fatalf("authenticate: %v", r.body)
	}
	msg, auth := h.sms.last(t, "+447700900123")
	if auth != "Bearer gateway-token" {
		t.Errorf("the webhook got Authorization %q", auth)
	}
	v := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": codeIn(t, msg)})
	claims := h.custom.idClaims(h.finishAPI(t, b, az, v), az.nonce)
	if strings.Join(toStrings(claims["amr"]), " ") != "pwd sms mfa" {
		t.Fatalf("amr for SMS: %v", claims["amr"])
	}
}

func testAPIRecovery(t *testing.T, h *hfixture) {
	codes := h.recoveryCodes(t, h.alice)
	b := newBrowser(t, h.s)
	arID, az := h.handoff(t, b)
	r := h.authenticate(t, arID, h.alice)
	v := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": codes[0]})
	h.finishAPI(t, b, az, v)
	if notice := h.mail.last(t, "alice@example.com", "recovery code"); !strings.Contains(notice, "9 left") {
		t.Fatalf("the recovery notice: %s", notice)
	}
	// Each code works once.
	b = newBrowser(t, h.s)
	arID, az = h.handoff(t, b)
	r = h.authenticate(t, arID, h.alice)
	expect(t, "a used recovery code", h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": codes[0]}),
		http.StatusForbidden, "invalid_otp")
	h.finishAPI(t, b, az, h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": codes[1]}))
}

func testAPIEnrolment(t *testing.T, h *hfixture) {
	// The custom client's policy: a code to the address on file, then TOTP.
	b := newBrowser(t, h.s)
	arID, az := h.handoff(t, b)
	r := h.authenticate(t, arID, h.nora)
	expect(t, "authenticate", r, http.StatusOK, "")
	if r.str("authType") != login.MethodEmail || r.str("secret") != "" {
		t.Fatalf("no secret before a proven channel: %v", r.body)
	}
	tx := r.str("transactionID")
	e := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": tx, "otp": codeIn(t, h.mail.last(t, "nora@example.com", "sign-in code"))})
	if e.str("authType") != login.MethodTOTPEnroll || len(e.str("secret")) < 32 || !strings.HasPrefix(e.str("otpauthURL"), "otpauth://totp/") ||
		!strings.HasPrefix(e.str("qr"), "data:image/png;base64,") {
		t.Fatalf("enrolment step: %v", e.body)
	}
	h.nora.totpSecret = e.str("secret")
	expect(t, "a wrong first code", h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": tx, "otp": wrongCode(h.s.code(t, h.nora))}),
		http.StatusForbidden, "invalid_otp")
	v := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": tx, "otp": h.s.code(t, h.nora)})
	h.finishAPI(t, b, az, v)
	h.mail.last(t, "nora@example.com", "authenticator app was just set up")
	// From now on nora signs in with her authenticator.
	h.nextStep()
	b = newBrowser(t, h.s)
	arID, _ = h.handoff(t, b)
	if r = h.authenticate(t, arID, h.nora); r.str("authType") != login.MethodTOTP {
		t.Fatalf("after enrolment: %v", r.body)
	}

	// The default policy refuses a user without a second factor.
	h.s.db.UpdateClient(t.Context(), "custom", func(c *storage.Client) error { c.EnrollmentPolicy = storage.EnrollRefuse; return nil })
	olive := h.userWith(t, "olive", func(*storage.User) {})
	arID, _ = h.handoff(t, newBrowser(t, h.s))
	expect(t, "refuse policy", h.authenticate(t, arID, olive), http.StatusForbidden, "second_factor_required")
	// The operator's explicit choice: the secret after the password, logged loudly.
	h.s.db.UpdateClient(t.Context(), "custom", func(c *storage.Client) error { c.EnrollmentPolicy = storage.EnrollTOTPAfterPassword; return nil })
	arID, _ = h.handoff(t, newBrowser(t, h.s))
	if r = h.authenticate(t, arID, olive); r.str("authType") != login.MethodTOTPEnroll || r.str("secret") == "" {
		t.Fatalf("totp-after-password: %v", r.body)
	}
	if !strings.Contains(h.s.logs.String(), "ENROLLING A TOTP SECRET AFTER THE PASSWORD ALONE") {
		t.Fatal("totp-after-password was not logged loudly")
	}
}

func testAPIErrors(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	arID, _ := h.handoff(t, b)
	call := func(path string, body any) apiResult { return h.call(t, path, customOrigin, body) }
	wrong := call("/login/api/authenticate", h.authBody(arID, "alice", "nope"))
	unknown := call("/login/api/authenticate", h.authBody(arID, "nobody", "nope"))
	expect(t, "wrong password", wrong, http.StatusUnauthorized, "invalid_credentials")
	if unknown.status != wrong.status || mustJSON(unknown.body) != mustJSON(wrong.body) {
		t.Fatalf("unknown user %d %v differs from wrong password %d %v", unknown.status, unknown.body, wrong.status, wrong.body)
	}
	req, _ := http.NewRequest(http.MethodPost, h.s.URL+"/login/api/authenticate", strings.NewReader("{not json"))
	req.Header.Set("Content-Type", "application/json") // labelled JSON, malformed: 400 (unlabelled is 415)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed JSON: %d", resp.StatusCode)
	}
	expect(t, "missing fields", call("/login/api/authenticate", h.authBody(arID, "", "")), http.StatusBadRequest, "invalid_request")
	expect(t, "unknown request", call("/login/api/authenticate", h.authBody("nope", "alice", "x")), http.StatusGone, "transaction_expired")

	r := h.authenticate(t, arID, h.alice)
	tx := r.str("transactionID")
	expect(t, "malformed code", call("/login/api/verify", map[string]string{"transactionID": tx, "otp": "12"}), http.StatusBadRequest, "invalid_request")
	expect(t, "a TOTP transaction has nothing to resend", call("/login/api/resend", map[string]string{"transactionID": tx}), http.StatusBadRequest, "invalid_request")
	wrongOTP := func() apiResult {
		return call("/login/api/verify", map[string]string{"transactionID": tx, "otp": wrongCode(h.s.code(t, h.alice))})
	}
	for i := 1; i <= 4; i++ {
		expect(t, "wrong code", wrongOTP(), http.StatusForbidden, "invalid_otp")
	}
	// The wrong password and four wrong codes are five failures: the
	// account is locked for 30 s, even for the right code.
	if r := call("/login/api/verify", map[string]string{"transactionID": tx, "otp": h.s.code(t, h.alice)}); r.header.Get("Retry-After") == "" {
		t.Fatalf("locked account without Retry-After: %d %v", r.status, r.body)
	} else {
		expect(t, "locked account, right code", r, http.StatusTooManyRequests, "throttled")
	}
	h.s.clock.Advance(31 * time.Second)
	expect(t, "fifth wrong code", wrongOTP(), http.StatusGone, "transaction_expired")
	// The sixth failure locked the account again, now for a minute.
	arID, _ = h.handoff(t, newBrowser(t, h.s))
	locked := h.authenticate(t, arID, h.alice)
	if expect(t, "locked account", locked, http.StatusTooManyRequests, "throttled"); locked.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Disabled account, and an expired transaction.
	h.s.db.UpdateUser(t.Context(), h.sam.ID, func(u *storage.User) error { u.Disabled = true; return nil })
	expect(t, "disabled", h.authenticate(t, arID, h.sam), http.StatusForbidden, "account_disabled")
	r = h.authenticate(t, arID, h.emma)
	h.s.clock.Advance(11 * time.Minute)
	expect(t, "expired transaction", call("/login/api/verify", map[string]string{"transactionID": r.str("transactionID"), "otp": "123456"}),
		http.StatusGone, "transaction_expired")
	// A request never handed off to a browser cannot be used from the API.
	az := h.custom.authorize()
	u, _ := url.Parse(az.url)
	p := newBrowser(t, h.s)
	p.noFollow = true
	login := p.get(h.s.URL + "/authorize?" + u.RawQuery).location(t) // /login, not followed: no binding
	expect(t, "an unbound request", call("/login/api/authenticate", h.authBody(login.Query().Get("authRequestID"), "emma", h.emma.password)),
		http.StatusBadRequest, "invalid_request")
}

func testAPIOrigins(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	arID, _ := h.handoff(t, b)
	body := h.authBody(arID, "alice", h.alice.password)
	expect(t, "unregistered origin", h.call(t, "/login/api/authenticate", "https://evil.example.com", body), http.StatusForbidden, "origin_not_allowed")
	// Preflight: answered for a registered origin, with no credentials.
	for origin, want := range map[string]string{customOrigin: customOrigin, "https://evil.example.com": ""} {
		req, _ := http.NewRequest(http.MethodOptions, h.s.URL+"/login/api/verify", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight from %s: Allow-Origin %q, want %q, and no credentials", origin, got, want)
		}
	}
	r := h.call(t, "/login/api/authenticate", customOrigin, body)
	if r.header.Get("Access-Control-Allow-Origin") != customOrigin {
		t.Errorf("response to a registered origin lacks Access-Control-Allow-Origin")
	}
	// The redirectURI (its ticket) still belongs to the browser that started
	// the sign-in: another is refused before any cookie (doors_test.go).
	v := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": h.s.code(t, h.alice)})
	other := newBrowser(t, h.s)
	if p := other.get(v.str("redirectURI")); p.url.Path != "/login/session" || p.status != http.StatusForbidden {
		t.Fatalf("another browser following redirectURI ended at %s with %d", p.url, p.status)
	}
	// Positive control: the browser that started the sign-in gets its code.
	arID, az := h.handoff(t, b)
	body = h.authBody(arID, "alice", h.alice.password)
	h.s.clock.Advance(30 * time.Second) // a fresh TOTP step
	r = h.call(t, "/login/api/authenticate", customOrigin, body)
	h.finishAPI(t, b, az, h.call(t, "/login/api/verify", customOrigin,
		map[string]string{"transactionID": r.str("transactionID"), "otp": h.s.code(t, h.alice)}))
}

// testAPIRolePolicies: an operator's policy for a role, set with the CLI,
// takes the place of the client's for the role's users, and clearing it
// gives the client's back.
func testAPIRolePolicies(t *testing.T, h *hfixture) {
	nora := func() apiResult {
		arID, _ := h.handoff(t, newBrowser(t, h.s))
		return h.authenticate(t, arID, h.nora)
	}
	h.s.stile(t, "user", "update", "nora", "--role", "contractor")
	if r := nora(); r.str("authType") != login.MethodEmail { // the client's email-then-totp
		t.Fatalf("before any role policy: %v", r.body)
	}
	out := h.s.stile(t, "role", "set-policy", "contractor", "refuse")
	if !strings.Contains(out, `role "contractor"`) {
		t.Errorf("set-policy said %q", out)
	}
	if list := h.s.stile(t, "role", "list"); !strings.Contains(list, "contractor") || !strings.Contains(list, "refuse") {
		t.Errorf("role list: %s", list)
	}
	expect(t, "a contractor, refused by the role's policy", nora(), http.StatusForbidden, "second_factor_required")
	h.s.stile(t, "role", "clear-policy", "contractor")
	if r := nora(); r.str("authType") != login.MethodEmail {
		t.Fatalf("after clearing the role's policy: %v", r.body)
	}
}
