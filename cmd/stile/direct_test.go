package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
)

// TestDirectMode drives the headless direct mode (POST /headless/authenticate
// and /headless/login) over real HTTP, as a CMS backend would, with clients
// registered and switched through the real CLI, on SQLite and PostgreSQL.
func TestDirectMode(t *testing.T) {
	runHeadless(t, []hscenario{
		{"OffByDefault", testDirectOffByDefault},
		{"TOTP", testDirectTOTP},
		{"Email", testDirectEmail},
		{"SMS", testDirectSMS},
		{"Recovery", testDirectRecovery},
		{"APIKeys", testDirectAPIKeys},
		{"Credentials", testDirectCredentials},
		{"Steps", testDirectSteps},
		{"Throttling", testDirectThrottling},
		{"Browsers", testDirectBrowsers},
		{"EndUserIP", testDirectEndUserIP},
		{"ClientSwitchedOff", testDirectClientSwitchedOff},
	})
}

// dmClient is a confidential client with the direct mode on: its secret
// (for the token endpoint) and its apiKey (for /headless/*), as the CLI
// printed them.
type dmClient struct {
	id, secret, apiKey string
	rp                 *relyingParty
}

// dmAdd registers a headless web client through the CLI, as an operator
// would: `stile client add … --headless`.
func (h *hfixture) dmAdd(t *testing.T, id string) *dmClient {
	t.Helper()
	redirect := "https://" + id + ".example.com/cb"
	var out map[string]any
	jsonInto(t, h.s.stile(t, "client", "add", "--id", id, "--name", "CMS "+id, "--type", "web", "--redirect-uri", redirect,
		"--grant-type", "refresh_token", "--first-party", "--headless", "--json"), &out)
	c := &dmClient{id: id}
	c.secret, _ = out["client_secret"].(string)
	c.apiKey, _ = out["api_key"].(string)
	if c.secret == "" || !strings.HasPrefix(c.apiKey, "stile_") || out["headless"] != true {
		t.Fatalf("client add --headless printed %v", out)
	}
	c.rp = newRP(t, h.s, id, c.secret, redirect)
	return c
}

// dmUpdate runs `stile client update ID args… --json` and returns what it printed.
func (h *hfixture) dmUpdate(t *testing.T, id string, args ...string) map[string]any {
	t.Helper()
	var out map[string]any
	jsonInto(t, h.s.stile(t, append(append([]string{"client", "update", id}, args...), "--json")...), &out)
	return out
}

// dmCall posts JSON to /headless/<step> from a backend (no Origin unless
// header says so); header is name, value pairs.
func (h *hfixture) dmCall(t *testing.T, step string, body any, header ...string) apiResult {
	t.Helper()
	return callJSON(t, http.MethodPost, h.s.URL+"/headless/"+step, body, header...)
}

// dmAuth is the first step for u with key, checked to succeed with the
// method want.
func (h *hfixture) dmAuth(t *testing.T, key string, u *user, want string) string {
	t.Helper()
	r := h.dmCall(t, "authenticate", map[string]string{"username": u.Username, "password": u.password, "apiKey": key})
	expect(t, "authenticate "+u.Username, r, http.StatusOK, "")
	if r.str("authType") != want || r.str("transactionID") == "" || r.str("username") != u.Username || r.str("message") == "" {
		t.Fatalf("authenticate %s: %v, want authType %s, a transactionID, the username and a message", u.Username, r.body, want)
	}
	return r.str("transactionID")
}

// dmLogin is the second step.
func (h *hfixture) dmLogin(t *testing.T, key, username, tx, authType, otp string, header ...string) apiResult {
	t.Helper()
	return h.dmCall(t, "login", map[string]string{"username": username, "transactionID": tx, "authType": authType,
		"otp": otp, "apiKey": key}, header...)
}

// dmTokens checks a successful /headless/login answer as a CMS would use
// it: the profile, an ID token that go-oidc verifies against stile's JWKS
// for this client, an access token userinfo accepts, and a refresh token
// the token endpoint redeems with the client's secret. It returns the ID
// token's claims.
func (h *hfixture) dmTokens(t *testing.T, c *dmClient, r apiResult, u *user, amr string) map[string]any {
	t.Helper()
	expect(t, "login "+u.Username, r, http.StatusOK, "")
	if r.str("uid") != u.ID || r.str("username") != u.Username || r.str("token_type") != "Bearer" ||
		r.str("id_token") == "" || r.str("access_token") == "" || r.str("refresh_token") == "" {
		t.Fatalf("login answer %v", r.body)
	}
	if exp, _ := r.body["expires_in"].(float64); exp <= 0 {
		t.Errorf("expires_in = %v", r.body["expires_in"])
	}
	checkUserClaims(t, "the login answer", r.body)

	ctx := context.Background()
	idt, err := c.rp.provider.Verifier(&oidc.Config{ClientID: c.id}).Verify(ctx, r.str("id_token"))
	if err != nil {
		t.Fatalf("go-oidc refuses the direct mode's ID token: %v", err)
	}
	var claims map[string]any
	idt.Claims(&claims)
	if idt.Issuer != h.s.URL || claims["sub"] != u.ID || claims["uid"] != u.ID ||
		strings.Join(toStrings(claims["amr"]), " ") != amr || claims["auth_time"] == nil {
		t.Fatalf("ID token claims %v, want sub=uid=%s, amr %q, auth_time", claims, u.ID, amr)
	}
	// The ID token is this client's only.
	if _, err := c.rp.provider.Verifier(&oidc.Config{ClientID: "custom"}).Verify(ctx, r.str("id_token")); err == nil {
		t.Fatal("the ID token verified for another audience")
	}

	info, err := c.rp.userinfo(&oauth2.Token{AccessToken: r.str("access_token"), TokenType: "Bearer"})
	if err != nil || info["sub"] != u.ID {
		t.Fatalf("userinfo with the direct mode's access token: %v %v", info, err)
	}

	// The refresh token: refused with a wrong secret, then redeemed with the right one.
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str("refresh_token")}}
	if resp, body := rawToken(t, h.s, form, c.id, c.secret+"x"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("refresh with a wrong secret: %d %v", resp.StatusCode, body)
	}
	resp, body := rawToken(t, h.s, form, c.id, c.secret)
	if resp.StatusCode != http.StatusOK || body["access_token"] == nil || body["refresh_token"] == r.str("refresh_token") {
		t.Fatalf("refresh: %d %v", resp.StatusCode, body)
	}
	raw, _ := body["id_token"].(string)
	if idt, err := c.rp.provider.Verifier(&oidc.Config{ClientID: c.id}).Verify(ctx, raw); err != nil || idt.Subject != u.ID {
		t.Fatalf("the refreshed ID token: %v", err)
	}
	return claims
}

func testDirectOffByDefault(t *testing.T, h *hfixture) {
	// No client has the direct mode (the fixture's "app" and "custom" do
	// not): both endpoints answer 404 not_enabled, whatever the key, and
	// no password is checked.
	auth := map[string]string{"username": "alice", "password": h.alice.password, "apiKey": "stile_0123456789abcdef_secret"}
	second := map[string]string{"username": "alice", "transactionID": "nope", "authType": "TOTP", "otp": "123456", "apiKey": auth["apiKey"]}
	before := h.s.hasher.verifies.Load()
	expect(t, "authenticate, mode off", h.dmCall(t, "authenticate", auth), http.StatusNotFound, string(login.CodeNotEnabled))
	expect(t, "login, mode off", h.dmCall(t, "login", second), http.StatusNotFound, string(login.CodeNotEnabled))
	expect(t, "no apiKey, mode off", h.dmCall(t, "authenticate", map[string]string{"username": "alice", "password": "x"}),
		http.StatusNotFound, string(login.CodeNotEnabled))
	if n := h.s.hasher.verifies.Load() - before; n != 0 {
		t.Fatalf("the disabled mode checked %d passwords", n)
	}

	// The operator enables it for "app": the same calls, with its key, work.
	out := h.dmUpdate(t, "app", "--headless")
	c := &dmClient{id: "app", secret: h.secret, rp: h.rp}
	c.apiKey, _ = out["api_key"].(string)
	if !strings.HasPrefix(c.apiKey, "stile_") || out["headless"] != true {
		t.Fatalf("client update --headless printed %v", out)
	}
	expect(t, "authenticate with a made-up key, mode on", h.dmCall(t, "authenticate", auth), http.StatusBadRequest, string(login.CodeInvalidAPIKey))
	auth["apiKey"] = c.apiKey
	r := h.dmCall(t, "authenticate", auth)
	expect(t, "authenticate, mode on", r, http.StatusOK, "")
	second["apiKey"], second["transactionID"], second["otp"] = c.apiKey, r.str("transactionID"), h.s.code(t, h.alice)
	h.dmTokens(t, c, h.dmCall(t, "login", second), h.alice, "pwd otp mfa")
}

func testDirectTOTP(t *testing.T, h *hfixture) {
	c := h.dmAdd(t, "cms")
	tx := h.dmAuth(t, c.apiKey, h.alice, login.MethodTOTP)
	h.dmTokens(t, c, h.dmLogin(t, c.apiKey, "alice", tx, login.MethodTOTP, h.s.code(t, h.alice)), h.alice, "pwd otp mfa")
	// The transaction is over; the accepted TOTP step is spent too.
	expect(t, "the finished transaction", h.dmLogin(t, c.apiKey, "alice", tx, login.MethodTOTP, h.s.code(t, h.alice)),
		http.StatusGone, string(login.CodeExpired))
	tx = h.dmAuth(t, c.apiKey, h.alice, login.MethodTOTP)
	expect(t, "a replayed TOTP step", h.dmLogin(t, c.apiKey, "alice", tx, login.MethodTOTP, h.s.code(t, h.alice)),
		http.StatusForbidden, string(login.CodeInvalidOTP))
	h.nextStep()
	expect(t, "the next TOTP step", h.dmLogin(t, c.apiKey, "alice", tx, login.MethodTOTP, h.s.code(t, h.alice)), http.StatusOK, "")
}

func testDirectEmail(t *testing.T, h *hfixture) {
	c := h.dmAdd(t, "cms")
	r := h.dmCall(t, "authenticate", map[string]string{"username": "emma", "password": h.emma.password, "apiKey": c.apiKey})
	expect(t, "authenticate emma", r, http.StatusOK, "")
	if r.str("authType") != login.MethodEmail || !strings.Contains(r.str("message"), "e•••@example.com") || r.str("username") != "emma" {
		t.Fatalf("authenticate emma: %v", r.body)
	}
	code := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	expect(t, "a wrong emailed code", h.dmLogin(t, c.apiKey, "emma", r.str("transactionID"), login.MethodEmail, wrongCode(code)),
		http.StatusForbidden, string(login.CodeInvalidOTP))
	h.dmTokens(t, c, h.dmLogin(t, c.apiKey, "emma", r.str("transactionID"), login.MethodEmail, code), h.emma, "pwd otp mfa")
}

func testDirectSMS(t *testing.T, h *hfixture) {
	c := h.dmAdd(t, "cms")
	r := h.dmCall(t, "authenticate", map[string]string{"username": "sam", "password": h.sam.password, "apiKey": c.apiKey})
	expect(t, "authenticate sam", r, http.StatusOK, "")
	if r.str("authType") != login.MethodSMS || !strings.Contains(r.str("message"), "0123") {
		t.Fatalf("authenticate sam: %v", r.body)
	}
	msg, auth := h.sms.last(t, "+447700900123")
	if auth != "Bearer gateway-token" {
		t.Errorf("the webhook got Authorization %q", auth)
	}
	code := codeIn(t, msg)
	expect(t, "a wrong texted code", h.dmLogin(t, c.apiKey, "sam", r.str("transactionID"), login.MethodSMS, wrongCode(code)),
		http.StatusForbidden, string(login.CodeInvalidOTP))
	h.dmTokens(t, c, h.dmLogin(t, c.apiKey, "sam", r.str("transactionID"), login.MethodSMS, code), h.sam, "pwd sms mfa")
}

func testDirectRecovery(t *testing.T, h *hfixture) {
	c := h.dmAdd(t, "cms")
	codes := h.recoveryCodes(t, h.alice)
	tx := h.dmAuth(t, c.apiKey, h.alice, login.MethodTOTP)
	h.dmTokens(t, c, h.dmLogin(t, c.apiKey, "alice", tx, login.MethodRecovery, codes[0]), h.alice, "pwd otp mfa")
	if notice := h.mail.last(t, "alice@example.com", "recovery code"); !strings.Contains(notice, "9 left") {
		t.Fatalf("the recovery notice: %s", notice)
	}
	// Each code works once; the next one works.
	tx = h.dmAuth(t, c.apiKey, h.alice, login.MethodTOTP)
	expect(t, "a used recovery code", h.dmLogin(t, c.apiKey, "alice", tx, login.MethodRecovery, codes[0]),
		http.StatusForbidden, string(login.CodeInvalidOTP))
	expect(t, "the next recovery code", h.dmLogin(t, c.apiKey, "alice", tx, login.MethodRecovery, codes[1]), http.StatusOK, "")
	// A recovery code stands in whatever the transaction's method, also
	// under that method's authType.
	tx = h.dmAuth(t, c.apiKey, h.alice, login.MethodTOTP)
	expect(t, "a recovery code under authType TOTP", h.dmLogin(t, c.apiKey, "alice", tx, login.MethodTOTP, codes[2]), http.StatusOK, "")
}

func testDirectAPIKeys(t *testing.T, h *hfixture) {
	c := h.dmAdd(t, "cms")
	id, secret, _ := strings.Cut(strings.TrimPrefix(c.apiKey, "stile_"), "_")
	flip := map[bool]string{true: "B", false: "A"}[strings.HasSuffix(secret, "A")]
	bad := map[string]string{
		"empty":                "",
		"not a key":            "nope",
		"prefix only":          "stile_",
		"no secret":            "stile_" + id,
		"another prefix":       "sk_" + id + "_" + secret,
		"unknown id":           "stile_0123456789abcdef_" + secret,
		"right id, bad secret": "stile_" + id + "_" + secret[:len(secret)-1] + flip,
		"right id, no secret":  "stile_" + id + "_",
		"the client's secret":  c.secret,
	}
	auth := func(key string) apiResult {
		return h.dmCall(t, "authenticate", map[string]string{"username": "alice", "password": h.alice.password, "apiKey": key})
	}
	before := h.s.hasher.verifies.Load()
	var first apiResult
	for what, key := range bad {
		r := auth(key)
		expect(t, "authenticate, "+what, r, http.StatusBadRequest, string(login.CodeInvalidAPIKey))
		if first.body == nil {
			first = r
		} else if mustJSON(r.body) != mustJSON(first.body) {
			t.Fatalf("apiKey answers differ: %v and %v", r.body, first.body)
		}
	}
	if n := h.s.hasher.verifies.Load() - before; n != 0 {
		t.Fatalf("a bad apiKey still cost %d password checks", n)
	}
	// Positive control, and the second step: a bad key neither finishes
	// the transaction nor counts against it or the account (more bad
	// tries than it takes to lock either).
	tx := h.dmAuth(t, c.apiKey, h.alice, login.MethodTOTP)
	for what, key := range bad {
		expect(t, "login, "+what, h.dmLogin(t, key, "alice", tx, login.MethodTOTP, h.s.code(t, h.alice)),
			http.StatusBadRequest, string(login.CodeInvalidAPIKey))
	}
	expect(t, "login with the right key", h.dmLogin(t, c.apiKey, "alice", tx, login.MethodTOTP, h.s.code(t, h.alice)), http.StatusOK, "")

	// A client that is not headless has no key at all; "app" gets one when
	// enabled, distinct from cms's.
	out := h.dmUpdate(t, "app", "--headless")
	appKey, _ := out["api_key"].(string)
	if appKey == "" || appKey == c.apiKey {
		t.Fatalf("client update app --headless printed %v", out)
	}
	h.nextStep()
	h.dmAuth(t, appKey, h.alice, login.MethodTOTP)
}

func testDirectCredentials(t *testing.T, h *hfixture) {
	c := h.dmAdd(t, "cms")
	auth := func(username, password string) apiResult {
		return h.dmCall(t, "authenticate", map[string]string{"username": username, "password": password, "apiKey": c.apiKey})
	}
	before := h.s.hasher.verifies.Load()
	wrong, unknown := auth("alice", "nope"), auth("nobody", "nope")
	expect(t, "wrong password", wrong, http.StatusUnauthorized, string(login.CodeInvalidCredentials))
	if unknown.status != wrong.status || mustJSON(unknown.body) != mustJSON(wrong.body) {
		t.Fatalf("unknown user %d %v differs from wrong password %d %v", unknown.status, unknown.body, wrong.status, wrong.body)
	}
	if n := h.s.hasher.verifies.Load() - before; n != 2 {
		t.Fatalf("a wrong password and an unknown user cost %d password checks, want one each", n)
	}
	expect(t, "no password", auth("alice", ""), http.StatusBadRequest, string(login.CodeInvalidRequest))
	expect(t, "no username", auth(" ", "x"), http.StatusBadRequest, string(login.CodeInvalidRequest))
	for _, step := range []string{"authenticate", "login"} {
		resp, err := http.Post(h.s.URL+"/headless/"+step, "application/json", strings.NewReader("{not json"))
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || body["error"] != string(login.CodeInvalidRequest) {
			t.Fatalf("malformed JSON to %s: %d %v", step, resp.StatusCode, body)
		}
	}
	// Positive control; a disabled account is refused after the password.
	expect(t, "right password", auth("alice", h.alice.password), http.StatusOK, "")
	h.s.db.UpdateUser(t.Context(), h.sam.ID, func(u *storage.User) error { u.Disabled = true; return nil })
	expect(t, "disabled account", auth("sam", h.sam.password), http.StatusForbidden, string(login.CodeAccountDisabled))
}

func testDirectSteps(t *testing.T, h *hfixture) {
	cms, other := h.dmAdd(t, "cms"), h.dmAdd(t, "other")
	tx := h.dmAuth(t, cms.apiKey, h.alice, login.MethodTOTP)
	code := h.s.code(t, h.alice)
	mails := h.mail.count("alice@example.com")

	expect(t, "a wrong code", h.dmLogin(t, cms.apiKey, "alice", tx, login.MethodTOTP, wrongCode(code)),
		http.StatusForbidden, string(login.CodeInvalidOTP))
	expect(t, "a malformed code", h.dmLogin(t, cms.apiKey, "alice", tx, login.MethodTOTP, "12"),
		http.StatusBadRequest, string(login.CodeInvalidRequest))
	// authType is the server's: another is refused, and does not switch
	// the method (no code is emailed).
	for _, m := range []string{login.MethodEmail, login.MethodSMS, login.MethodTOTPEnroll, login.MethodRecovery, "totp", ""} {
		expect(t, "authType "+m+" on a TOTP transaction", h.dmLogin(t, cms.apiKey, "alice", tx, m, code),
			http.StatusBadRequest, string(login.CodeInvalidRequest))
	}
	if n := h.mail.count("alice@example.com"); n != mails {
		t.Fatalf("a refused authType sent %d mails", n-mails)
	}
	// The transaction's user only.
	for _, name := range []string{"emma", "nobody", ""} {
		expect(t, "username "+name+" on alice's transaction", h.dmLogin(t, cms.apiKey, name, tx, login.MethodTOTP, code),
			http.StatusBadRequest, string(login.CodeInvalidRequest))
	}
	// Another headless client, with its own valid key, cannot finish cms's transaction.
	expect(t, "another client's key", h.dmLogin(t, other.apiKey, "alice", tx, login.MethodTOTP, code),
		http.StatusForbidden, string(login.CodeWrongBrowser))
	// Positive control: none of that spent the code or the transaction.
	expect(t, "the right step", h.dmLogin(t, cms.apiKey, "alice", tx, login.MethodTOTP, code), http.StatusOK, "")
	expect(t, "the finished transaction", h.dmLogin(t, cms.apiKey, "alice", tx, login.MethodTOTP, code),
		http.StatusGone, string(login.CodeExpired))
	expect(t, "an unknown transaction", h.dmLogin(t, cms.apiKey, "alice", "nope", login.MethodTOTP, code),
		http.StatusGone, string(login.CodeExpired))
	expect(t, "no transaction", h.dmLogin(t, cms.apiKey, "alice", "", login.MethodTOTP, code),
		http.StatusBadRequest, string(login.CodeInvalidRequest))

	// And the other way round: other's transaction is not cms's.
	h.nextStep()
	tx = h.dmAuth(t, other.apiKey, h.alice, login.MethodTOTP)
	expect(t, "cms's key on other's transaction", h.dmLogin(t, cms.apiKey, "alice", tx, login.MethodTOTP, h.s.code(t, h.alice)),
		http.StatusForbidden, string(login.CodeWrongBrowser))
	h.dmTokens(t, other, h.dmLogin(t, other.apiKey, "alice", tx, login.MethodTOTP, h.s.code(t, h.alice)), h.alice, "pwd otp mfa")

	// An EMAIL transaction stays one: TOTP, SMS or RECOVERY with the
	// emailed code are refused; EMAIL then works with the same code.
	r := h.dmCall(t, "authenticate", map[string]string{"username": "emma", "password": h.emma.password, "apiKey": cms.apiKey})
	expect(t, "authenticate emma", r, http.StatusOK, "")
	emailed := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	for _, m := range []string{login.MethodTOTP, login.MethodSMS, login.MethodRecovery} {
		expect(t, "authType "+m+" on an EMAIL transaction", h.dmLogin(t, cms.apiKey, "emma", r.str("transactionID"), m, emailed),
			http.StatusBadRequest, string(login.CodeInvalidRequest))
	}
	expect(t, "authType EMAIL", h.dmLogin(t, cms.apiKey, "emma", r.str("transactionID"), login.MethodEmail, emailed), http.StatusOK, "")

	// A transaction lasts login.DirectLifetime.
	h.nextStep()
	tx = h.dmAuth(t, cms.apiKey, h.alice, login.MethodTOTP)
	h.s.clock.Advance(login.DirectLifetime + time.Second)
	expect(t, "an expired transaction", h.dmLogin(t, cms.apiKey, "alice", tx, login.MethodTOTP, h.s.code(t, h.alice)),
		http.StatusGone, string(login.CodeExpired))
	tx = h.dmAuth(t, cms.apiKey, h.alice, login.MethodTOTP)
	expect(t, "a fresh transaction", h.dmLogin(t, cms.apiKey, "alice", tx, login.MethodTOTP, h.s.code(t, h.alice)), http.StatusOK, "")
}

func testDirectThrottling(t *testing.T, h *hfixture) {
	c := h.dmAdd(t, "cms")
	auth := func(username, password string) apiResult {
		return h.dmCall(t, "authenticate", map[string]string{"username": username, "password": password, "apiKey": c.apiKey})
	}
	for i := 1; i <= 5; i++ {
		expect(t, "wrong password", auth("alice", "nope"), http.StatusUnauthorized, string(login.CodeInvalidCredentials))
		expect(t, "unknown user", auth("nobody", "nope"), http.StatusUnauthorized, string(login.CodeInvalidCredentials))
	}
	locked, unknown := auth("alice", h.alice.password), auth("nobody", "nope")
	expect(t, "locked account, right password", locked, http.StatusTooManyRequests, string(login.CodeThrottled))
	if s, err := strconv.Atoi(locked.header.Get("Retry-After")); err != nil || s <= 0 || s > 30 {
		t.Fatalf("Retry-After %q, want 1..30 seconds", locked.header.Get("Retry-After"))
	}
	if unknown.status != locked.status || mustJSON(unknown.body) != mustJSON(locked.body) {
		t.Fatalf("a locked unknown name %d %v differs from a locked account %d %v", unknown.status, unknown.body, locked.status, locked.body)
	}
	// Others are not locked; after the lock, alice signs in.
	h.dmAuth(t, c.apiKey, h.emma, login.MethodEmail)
	h.s.clock.Advance(31 * time.Second)
	tx := h.dmAuth(t, c.apiKey, h.alice, login.MethodTOTP)
	expect(t, "after the lock", h.dmLogin(t, c.apiKey, "alice", tx, login.MethodTOTP, h.s.code(t, h.alice)), http.StatusOK, "")

	// Wrong codes count too: four, then a fifth that kills the transaction,
	// and the account is locked even for the right code in a new one.
	h.nextStep()
	tx = h.dmAuth(t, c.apiKey, h.alice, login.MethodTOTP)
	bad := wrongCode(h.s.code(t, h.alice))
	for i := 1; i <= 4; i++ {
		expect(t, "wrong code", h.dmLogin(t, c.apiKey, "alice", tx, login.MethodTOTP, bad), http.StatusForbidden, string(login.CodeInvalidOTP))
	}
	expect(t, "fifth wrong code", h.dmLogin(t, c.apiKey, "alice", tx, login.MethodTOTP, bad), http.StatusGone, string(login.CodeExpired))
	r := auth("alice", h.alice.password)
	if expect(t, "locked by wrong codes", r, http.StatusTooManyRequests, string(login.CodeThrottled)); r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	h.s.clock.Advance(31 * time.Second)
	tx = h.dmAuth(t, c.apiKey, h.alice, login.MethodTOTP)
	expect(t, "after the second lock", h.dmLogin(t, c.apiKey, "alice", tx, login.MethodTOTP, h.s.code(t, h.alice)), http.StatusOK, "")
}

func testDirectBrowsers(t *testing.T, h *hfixture) {
	c := h.dmAdd(t, "cms")
	auth := map[string]string{"username": "alice", "password": h.alice.password, "apiKey": c.apiKey}
	// Any Origin is a browser's, refused even with a valid key — before the
	// password is looked at.
	before := h.s.hasher.verifies.Load()
	for _, origin := range []string{"https://cms.example.com", h.s.URL, customOrigin, "null"} {
		r := h.dmCall(t, "authenticate", auth, "Origin", origin)
		expect(t, "authenticate from "+origin, r, http.StatusForbidden, string(login.CodeOriginNotAllowed))
		if r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("a refused browser call got Access-Control-Allow-Origin %q", r.header.Get("Access-Control-Allow-Origin"))
		}
	}
	if n := h.s.hasher.verifies.Load() - before; n != 0 {
		t.Fatalf("browser calls cost %d password checks", n)
	}
	// Positive control: the backend's call, without Origin.
	r := h.dmCall(t, "authenticate", auth)
	expect(t, "authenticate from a backend", r, http.StatusOK, "")
	code := h.s.code(t, h.alice)
	expect(t, "login from a browser", h.dmLogin(t, c.apiKey, "alice", r.str("transactionID"), login.MethodTOTP, code, "Origin", "https://cms.example.com"),
		http.StatusForbidden, string(login.CodeOriginNotAllowed))
	expect(t, "login from a backend", h.dmLogin(t, c.apiKey, "alice", r.str("transactionID"), login.MethodTOTP, code), http.StatusOK, "")
	// A preflight from an unregistered origin is not allowed either (the
	// POST itself is refused above whatever the preflight says).
	req, _ := http.NewRequest(http.MethodOptions, h.s.URL+"/headless/login", nil)
	req.Header.Set("Origin", "https://cms.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("preflight to /headless/login: %d, Allow-Origin %q", resp.StatusCode, got)
	}
}

// dmLogged reports whether the server logged a line with message msg and
// the attribute remote=addr.
func dmLogged(s *server, msg, addr string) bool {
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, "msg=\""+msg+"\"") && strings.Contains(line, " remote="+addr) {
			return true
		}
	}
	return false
}

func testDirectEndUserIP(t *testing.T, h *hfixture) {
	c := h.dmAdd(t, "cms")
	const hdr = "X-End-User-IP"
	auth := func(key, username, password, ip string) apiResult {
		return h.dmCall(t, "authenticate", map[string]string{"username": username, "password": password, "apiKey": key}, hdr, ip)
	}
	wrongPassword := func(username, ip string) {
		t.Helper()
		expect(t, "wrong password for "+username+" from "+ip, auth(c.apiKey, username, "nope", ip), http.StatusUnauthorized,
			string(login.CodeInvalidCredentials))
	}
	// Without a valid key the header is not read: the call is refused, the
	// address it claims is nowhere in the log, and it counts for nothing
	// (more refused calls than it takes to lock an address).
	for range 6 {
		expect(t, "no key", auth("", "alice", "nope", "198.51.100.1"), http.StatusBadRequest, string(login.CodeInvalidAPIKey))
		expect(t, "wrong key", auth(c.apiKey+"x", "nobody", "nope", "198.51.100.1"), http.StatusBadRequest, string(login.CodeInvalidAPIKey))
		expect(t, "wrong key, login", h.dmLogin(t, "stile_0123456789abcdef_x", "alice", "nope", login.MethodTOTP, "123456", hdr, "198.51.100.1"),
			http.StatusBadRequest, string(login.CodeInvalidAPIKey))
	}
	if strings.Contains(h.s.logs.String(), "198.51.100.1") {
		t.Fatal("an unauthenticated request's X-End-User-IP reached the log")
	}
	r := auth(c.apiKey, "alice", h.alice.password, "198.51.100.1")
	expect(t, "right key, from the address bad keys claimed", r, http.StatusOK, "")

	// With the right key, the log names the end user's address, not the
	// backend's; without the header, the backend's. (A header that is not
	// one address is refused: TestDirectEndUserIPFailsClosed.)
	expect(t, "right code", h.dmLogin(t, c.apiKey, "alice", r.str("transactionID"), login.MethodTOTP, h.s.code(t, h.alice), hdr, "198.51.100.4"),
		http.StatusOK, "")
	if !dmLogged(h.s, "login step passed", "198.51.100.1") || !dmLogged(h.s, "login succeeded", "198.51.100.4") {
		t.Fatalf("the sign-in was not logged with the end user's address:\n%s", h.s.logs.String())
	}
	wrongPassword("alice", "198.51.100.2")
	if !dmLogged(h.s, "login failed", "198.51.100.2") {
		t.Fatalf("the failure was not logged with the end user's address:\n%s", h.s.logs.String())
	}
	wrongPassword("alice", "")
	if !dmLogged(h.s, "login failed", "127.0.0.1:") {
		t.Fatal("without X-End-User-IP, the failure was not logged with the backend's address")
	}

	// Throttling keys on the reported address too: wrong passwords for
	// twenty different names from one address (more than an account's
	// five: many honest users may share one) lock that address for any
	// name, right password or not, with Retry-After...
	for i := range 19 {
		wrongPassword("guess"+strconv.Itoa(i), "203.0.113.5")
	}
	expect(t, "an address after 19 failures", auth(c.apiKey, "emma", h.emma.password, "203.0.113.5"), http.StatusOK, "")
	wrongPassword("nobody", "203.0.113.5")
	locked := auth(c.apiKey, "emma", h.emma.password, "203.0.113.5")
	expect(t, "a locked address, right password", locked, http.StatusTooManyRequests, string(login.CodeThrottled))
	if s, err := strconv.Atoi(locked.header.Get("Retry-After")); err != nil || s <= 0 || s > 30 {
		t.Fatalf("Retry-After %q, want 1..30 seconds", locked.header.Get("Retry-After"))
	}
	// ... the same for an IPv4-mapped spelling of it, ...
	expect(t, "a locked address, mapped", auth(c.apiKey, "emma", h.emma.password, "::ffff:203.0.113.5"), http.StatusTooManyRequests,
		string(login.CodeThrottled))
	// ... but not the accounts themselves, nor other addresses, nor the
	// backend calling without the header (its address is every user's).
	h.dmAuth(t, c.apiKey, h.emma, login.MethodEmail)
	expect(t, "another address", auth(c.apiKey, "emma", h.emma.password, "203.0.113.6"), http.StatusOK, "")
	// The lock expires.
	h.s.clock.Advance(31 * time.Second)
	expect(t, "the address after its lock", auth(c.apiKey, "emma", h.emma.password, "203.0.113.5"), http.StatusOK, "")

	// An IPv6 address counts by its /64.
	for i := range 20 {
		wrongPassword("guess"+strconv.Itoa(i), "2001:db8:0:1::"+strconv.Itoa(i+1))
	}
	expect(t, "same /64", auth(c.apiKey, "emma", h.emma.password, "2001:db8:0:1::ffff"), http.StatusTooManyRequests, string(login.CodeThrottled))
	expect(t, "another /64", auth(c.apiKey, "emma", h.emma.password, "2001:db8:0:2::1"), http.StatusOK, "")

	// And per (account, reported address): five wrong passwords lock alice
	// at that address only, so the guesser does not lock the owner out
	// elsewhere (the account-wide ceiling is far higher: lockout_test.go).
	h.s.clock.Advance(time.Hour)
	for range 5 {
		wrongPassword("alice", "192.0.2.1")
	}
	expect(t, "alice from the guessing address", auth(c.apiKey, "alice", h.alice.password, "192.0.2.1"), http.StatusTooManyRequests,
		string(login.CodeThrottled))
	expect(t, "alice from another address", auth(c.apiKey, "alice", h.alice.password, "192.0.2.99"), http.StatusOK, "")
	expect(t, "another user from the guessing address", auth(c.apiKey, "emma", h.emma.password, "192.0.2.1"), http.StatusOK, "")
}

func testDirectClientSwitchedOff(t *testing.T, h *hfixture) {
	cms, other := h.dmAdd(t, "cms"), h.dmAdd(t, "other")
	open := h.dmAuth(t, cms.apiKey, h.alice, login.MethodTOTP)

	// The operator turns cms's direct mode off: its key stops working at
	// once (400: another client keeps the mode on), even for a transaction
	// it opened before.
	if out := h.dmUpdate(t, "cms", "--headless=false"); out["headless"] != false || out["api_key"] != nil {
		t.Fatalf("client update --headless=false printed %v", out)
	}
	expect(t, "finish after switch-off", h.dmLogin(t, cms.apiKey, "alice", open, login.MethodTOTP, h.s.code(t, h.alice)),
		http.StatusBadRequest, string(login.CodeInvalidAPIKey))
	expect(t, "authenticate after switch-off", h.dmCall(t, "authenticate", map[string]string{"username": "alice",
		"password": h.alice.password, "apiKey": cms.apiKey}), http.StatusBadRequest, string(login.CodeInvalidAPIKey))
	// Positive control: the other client still signs alice in.
	tx := h.dmAuth(t, other.apiKey, h.alice, login.MethodTOTP)
	expect(t, "other client", h.dmLogin(t, other.apiKey, "alice", tx, login.MethodTOTP, h.s.code(t, h.alice)), http.StatusOK, "")

	// The server checks the flag itself, not only the CLI voiding the key:
	// a key left on a client whose mode is off (written to the store
	// directly) is refused too.
	if _, err := h.s.db.UpdateClient(t.Context(), "other", func(c *storage.Client) error { c.Headless = false; return nil }); err != nil {
		t.Fatal(err)
	}
	h.dmAdd(t, "third") // keeps the mode on: the answer is about the key, not the mode
	expect(t, "a key left on a switched-off client", h.dmCall(t, "authenticate", map[string]string{"username": "alice",
		"password": h.alice.password, "apiKey": other.apiKey}), http.StatusBadRequest, string(login.CodeInvalidAPIKey))
	if _, err := h.s.db.UpdateClient(t.Context(), "other", func(c *storage.Client) error { c.Headless = true; return nil }); err != nil {
		t.Fatal(err)
	}
	h.s.stile(t, "client", "remove", "third")

	// A rotated key replaces the old one.
	out := h.dmUpdate(t, "other", "--rotate-api-key")
	rotated, _ := out["api_key"].(string)
	if rotated == "" || rotated == other.apiKey {
		t.Fatalf("client update --rotate-api-key printed %v", out)
	}
	auth := func(key string) apiResult {
		return h.dmCall(t, "authenticate", map[string]string{"username": "alice", "password": h.alice.password, "apiKey": key})
	}
	expect(t, "the key before rotation", auth(other.apiKey), http.StatusBadRequest, string(login.CodeInvalidAPIKey))
	expect(t, "the rotated key", auth(rotated), http.StatusOK, "")

	// Removing the last headless client turns the mode off altogether: 404.
	h.s.stile(t, "client", "remove", "other")
	expect(t, "a removed client's key", auth(rotated), http.StatusNotFound, string(login.CodeNotEnabled))
	expect(t, "a switched-off client's key, mode off", auth(cms.apiKey), http.StatusNotFound, string(login.CodeNotEnabled))

	// Switching the mode off voided cms's key: switching it back on prints a
	// new one, and the old one stays refused.
	out = h.dmUpdate(t, "cms", "--headless")
	renewed, _ := out["api_key"].(string)
	if out["headless"] != true || !strings.HasPrefix(renewed, "stile_") || renewed == cms.apiKey {
		t.Fatalf("client update --headless (again) printed %v", out)
	}
	expect(t, "the key from before the switch-off", auth(cms.apiKey), http.StatusBadRequest, string(login.CodeInvalidAPIKey))
	cms.apiKey = renewed
	h.nextStep()
	tx = h.dmAuth(t, cms.apiKey, h.alice, login.MethodTOTP)
	h.dmTokens(t, cms, h.dmLogin(t, cms.apiKey, "alice", tx, login.MethodTOTP, h.s.code(t, h.alice)), h.alice, "pwd otp mfa")
}
