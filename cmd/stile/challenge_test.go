package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestChallengeEndpoint drives the authorization challenge endpoint
// (draft-ietf-oauth-first-party-apps-04) over real HTTP as a native app
// and a confidential backend would, with clients registered through the
// real CLI, codes by real SMTP and an SMS webhook, tokens redeemed at the
// token endpoint and verified by go-oidc, on SQLite and PostgreSQL.
func TestChallengeEndpoint(t *testing.T) {
	runHeadless(t, []hscenario{
		{"TOTP", testChallengeTOTP},
		{"Email", testChallengeEmail},
		{"SMS", testChallengeSMS},
		{"Recovery", testChallengeRecovery},
		{"Credentials", testChallengeCredentials},
		{"Clients", testChallengeClients},
		{"Parameters", testChallengeParameters},
		{"Binding", testChallengeBinding},
		{"OtherDoors", testChallengeOtherDoors},
		{"Expiry", testChallengeExpiry},
		{"RedirectToWeb", testChallengeRedirectToWeb},
		{"Throttling", testChallengeThrottling},
		{"CodeReuse", testChallengeCodeReuse},
		{"Concurrency", testChallengeConcurrency},
	})
}

// chClient is a client registered with --first-party-app: its secret ("" for
// a public one) and a relying party that redeems its codes.
type chClient struct {
	id, secret string
	rp         *relyingParty
}

// chAdd registers a first-party client through the CLI, as an operator
// would; typ is native (public) or web (confidential).
func (h *hfixture) chAdd(t *testing.T, id, typ string, args ...string) *chClient {
	t.Helper()
	redirect := "com.example." + id + ":/cb"
	if typ == "web" {
		redirect = "https://" + id + ".example.com/cb"
	}
	var out map[string]any
	jsonInto(t, h.s.stile(t, append([]string{"client", "add", "--id", id, "--type", typ, "--redirect-uri", redirect,
		"--grant-type", "refresh_token", "--first-party", "--json"}, args...)...), &out)
	c := &chClient{id: id}
	c.secret, _ = out["client_secret"].(string)
	c.rp = newRP(t, h.s, id, c.secret, "")
	return c
}

// chPKCE is one PKCE pair.
type chPKCE struct{ verifier, challenge string }

func newPKCE() chPKCE {
	v := oauth2.GenerateVerifier()
	return chPKCE{v, oauth2.S256ChallengeFromVerifier(v)}
}

// chPost posts a form to the challenge endpoint as client c (Basic
// authentication for a confidential one, client_id for a public one);
// header is name, value pairs.
func (h *hfixture) chPost(t *testing.T, c *chClient, form url.Values, header ...string) apiResult {
	t.Helper()
	if c != nil && c.secret == "" && !form.Has("client_id") {
		form.Set("client_id", c.id)
	}
	req, _ := http.NewRequest(http.MethodPost, h.s.URL+login.ChallengePath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c != nil && c.secret != "" {
		req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := apiResult{status: resp.StatusCode, header: resp.Header}
	if err := json.NewDecoder(resp.Body).Decode(&r.body); err != nil {
		t.Fatalf("challenge endpoint answered %d without JSON: %v", resp.StatusCode, err)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", cc)
	}
	return r
}

// chStart is the first request: username and password.
func (h *hfixture) chStart(t *testing.T, c *chClient, p chPKCE, username, password string, extra ...string) apiResult {
	t.Helper()
	form := url.Values{"response_type": {"code"}, "scope": {"openid profile email offline_access"}, "code_challenge": {p.challenge},
		"code_challenge_method": {"S256"}, "username": {username}, "password": {password}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			form.Del(extra[i])
		} else {
			form.Set(extra[i], extra[i+1])
		}
	}
	return h.chPost(t, c, form)
}

// chSession starts a sign-in that passes the password and returns its
// auth_session, checking the answer says which code comes next.
func (h *hfixture) chSession(t *testing.T, c *chClient, p chPKCE, u *user, want string) string {
	t.Helper()
	r := h.chStart(t, c, p, u.Username, u.password)
	chExpect(t, "start "+u.Username, r, http.StatusForbidden, "insufficient_authorization")
	if r.str("auth_type") != want || len(r.str("auth_session")) < 43 || r.str("error_description") == "" {
		t.Fatalf("start %s: %v, want auth_type %s, an auth_session and a description", u.Username, r.body, want)
	}
	return r.str("auth_session")
}

// chOTP is the next request: the auth_session and the code.
func (h *hfixture) chOTP(t *testing.T, c *chClient, p chPKCE, session, otp string) apiResult {
	t.Helper()
	return h.chPost(t, c, url.Values{"auth_session": {session}, "code_challenge": {p.challenge}, "code_challenge_method": {"S256"},
		"otp": {otp}})
}

// chCode is chOTP that must yield an authorization code.
func (h *hfixture) chCode(t *testing.T, c *chClient, p chPKCE, session, otp string) string {
	t.Helper()
	r := h.chOTP(t, c, p, session, otp)
	if r.status != http.StatusOK || r.str("authorization_code") == "" || len(r.body) != 1 {
		t.Fatalf("otp: %d %v, want 200 and only an authorization_code", r.status, r.body)
	}
	return r.str("authorization_code")
}

// chExpect checks an answer's status and OAuth error code.
func chExpect(t *testing.T, what string, r apiResult, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("%s: %d %v, want %d %s", what, r.status, r.body, status, code)
	}
}

// redeem exchanges a code at the token endpoint with the verifier, as the
// draft's token request does: without redirect_uri.
func (c *chClient) redeem(verifier, code string) (*oauth2.Token, error) {
	cfg := c.rp.config
	cfg.RedirectURL = ""
	if c.secret == "" {
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	return cfg.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
}

// tokens redeems the code and verifies the ID token with go-oidc: the user,
// and the factors it names.
func (c *chClient) tokens(t *testing.T, p chPKCE, code string, u *user, amr string) *oauth2.Token {
	t.Helper()
	tok, err := c.redeem(p.verifier, code)
	if err != nil {
		t.Fatalf("redeem the challenge's code: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := c.rp.provider.Verifier(&oidc.Config{ClientID: c.id}).Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var claims map[string]any
	idt.Claims(&claims)
	if idt.Subject != u.ID || claims["uid"] != u.ID || strings.Join(toStrings(claims["amr"]), " ") != amr || claims["auth_time"] == nil {
		t.Fatalf("ID token claims %v, want sub and uid %s, amr %q, auth_time", claims, u.ID, amr)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token for offline_access")
	}
	return tok
}

func testChallengeTOTP(t *testing.T, h *hfixture) {
	// Discovery names the endpoint.
	var doc map[string]any
	resp, err := http.Get(h.s.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc["authorization_challenge_endpoint"] != h.s.URL+"/oauth/authorize-challenge" {
		t.Fatalf("discovery: authorization_challenge_endpoint %v", doc["authorization_challenge_endpoint"])
	}
	app := h.chAdd(t, "mobile", "native", "--first-party-app")
	p := newPKCE()
	mark := lastID(t, h.s)
	session := h.chSession(t, app, p, h.alice, login.MethodTOTP)
	code := h.chCode(t, app, p, session, h.s.code(t, h.alice))
	tok := app.tokens(t, p, code, h.alice, "pwd otp mfa")
	// The audit trail has the three steps, each through this door.
	var steps []string
	for _, e := range trail(t, h.s, mark) {
		if e.Detail["door"] != "challenge" || e.ActorClient != "mobile" || e.UserID != h.alice.ID {
			t.Fatalf("audit event %+v: want door challenge, client mobile, user alice", e)
		}
		steps = append(steps, e.Type+"/"+e.Outcome)
	}
	if got := strings.Join(steps, " "); got != "login.password/success login.second_factor/success login.succeeded/success" {
		t.Fatalf("audit trail %s", got)
	}
	if info, err := app.rp.userinfo(tok); err != nil || info["sub"] != h.alice.ID {
		t.Fatalf("userinfo: %v %v", info, err)
	}
	// The auth_session ended with its code: reused, even with the next
	// right code, it is refused.
	h.nextStep()
	chExpect(t, "the auth_session reused", h.chOTP(t, app, p, session, h.s.code(t, h.alice)), http.StatusBadRequest, "invalid_session")
	// A wrong code leaves the auth_session good, with the tries it has left;
	// the right one then works.
	h.nextStep()
	p = newPKCE()
	session = h.chSession(t, app, p, h.alice, login.MethodTOTP)
	r := h.chOTP(t, app, p, session, wrongCode(h.s.code(t, h.alice)))
	chExpect(t, "a wrong code", r, http.StatusBadRequest, "invalid_grant")
	if r.str("auth_session") != session || r.body["tries_left"] != float64(4) {
		t.Fatalf("a wrong code: %v, want the auth_session and tries_left 4", r.body)
	}
	app.tokens(t, p, h.chCode(t, app, p, session, h.s.code(t, h.alice)), h.alice, "pwd otp mfa")
	// A TOTP code works once, across auth_sessions.
	p = newPKCE()
	session = h.chSession(t, app, p, h.alice, login.MethodTOTP)
	chExpect(t, "a used TOTP code", h.chOTP(t, app, p, session, h.s.code(t, h.alice)), http.StatusBadRequest, "invalid_grant")
}

func testChallengeEmail(t *testing.T, h *hfixture) {
	backend := h.chAdd(t, "backend", "web", "--first-party-app")
	p := newPKCE()
	before := h.mail.count("emma@example.com")
	session := h.chSession(t, backend, p, h.emma, login.MethodEmail)
	if h.mail.count("emma@example.com") != before+1 {
		t.Fatal("the first request sent no code by email")
	}
	otp := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	backend.tokens(t, p, h.chCode(t, backend, p, session, otp), h.emma, "pwd otp mfa")
}

func testChallengeSMS(t *testing.T, h *hfixture) {
	backend := h.chAdd(t, "backend", "web", "--first-party-app")
	p := newPKCE()
	session := h.chSession(t, backend, p, h.sam, login.MethodSMS)
	text, _ := h.sms.last(t, h.sam.Phone)
	backend.tokens(t, p, h.chCode(t, backend, p, session, codeIn(t, text)), h.sam, "pwd sms mfa")
}

func testChallengeRecovery(t *testing.T, h *hfixture) {
	app := h.chAdd(t, "mobile", "native", "--first-party-app")
	codes := h.recoveryCodes(t, h.alice)
	p := newPKCE()
	session := h.chSession(t, app, p, h.alice, login.MethodTOTP)
	app.tokens(t, p, h.chCode(t, app, p, session, codes[0]), h.alice, "pwd otp mfa")
	// Each recovery code works once; the next one works.
	p = newPKCE()
	session = h.chSession(t, app, p, h.alice, login.MethodTOTP)
	chExpect(t, "a used recovery code", h.chOTP(t, app, p, session, codes[0]), http.StatusBadRequest, "invalid_grant")
	app.tokens(t, p, h.chCode(t, app, p, session, codes[1]), h.alice, "pwd otp mfa")
}

func testChallengeCredentials(t *testing.T, h *hfixture) {
	app := h.chAdd(t, "mobile", "native", "--first-party-app")
	p := newPKCE()
	// An unknown user and a wrong password get one answer, at one
	// argon2id computation each, and open nothing.
	verifies := h.s.hasher.verifies.Load()
	wrong := h.chStart(t, app, p, "alice", "not her password")
	unknown := h.chStart(t, app, p, "nobody", "not her password")
	chExpect(t, "a wrong password", wrong, http.StatusBadRequest, "invalid_grant")
	if unknown.status != wrong.status || mustJSON(unknown.body) != mustJSON(wrong.body) || wrong.str("auth_session") != "" {
		t.Fatalf("an unknown user %d %v differs from a wrong password %d %v", unknown.status, unknown.body, wrong.status, wrong.body)
	}
	if n := h.s.hasher.verifies.Load() - verifies; n != 2 {
		t.Fatalf("%d password hashes for two attempts, want 2", n)
	}
	// A disabled account: refused after the right password, with nothing sent.
	h.s.stile(t, "user", "disable", "emma")
	before := h.mail.count("emma@example.com")
	chExpect(t, "a disabled account", h.chStart(t, app, p, "emma", h.emma.password), http.StatusForbidden, "access_denied")
	if h.mail.count("emma@example.com") != before {
		t.Fatal("a code went to a disabled account")
	}
	h.s.stile(t, "user", "enable", "emma")
	h.chSession(t, app, p, h.emma, login.MethodEmail)
	// Missing credentials: invalid_request, before any hashing.
	verifies = h.s.hasher.verifies.Load()
	chExpect(t, "no password", h.chStart(t, app, p, "alice", "", "password", ""), http.StatusBadRequest, "invalid_request")
	chExpect(t, "an otp on the first request", h.chStart(t, app, p, "alice", h.alice.password, "otp", "123456"),
		http.StatusBadRequest, "invalid_request")
	if n := h.s.hasher.verifies.Load() - verifies; n != 0 {
		t.Fatalf("%d password hashes for malformed requests", n)
	}
}

func testChallengeClients(t *testing.T, h *hfixture) {
	backend := h.chAdd(t, "backend", "web", "--first-party-app")
	app := h.chAdd(t, "mobile", "native")  // first-party, without --first-party-app
	plain := h.chAdd(t, "plain", "native") // made third-party below
	h.s.stile(t, "client", "update", "plain", "--first-party=false")
	p := newPKCE()
	verifies := h.s.hasher.verifies.Load()
	chExpect(t, "a client without first_party_app", h.chStart(t, app, p, "alice", h.alice.password), http.StatusBadRequest, "unauthorized_client")
	chExpect(t, "a third-party client", h.chStart(t, plain, p, "alice", h.alice.password), http.StatusBadRequest, "unauthorized_client")
	// The confidential client authenticates as at the token endpoint: a
	// wrong secret, no secret, or an unknown client is 401 invalid_client
	// with WWW-Authenticate.
	for what, c := range map[string]*chClient{
		"a wrong secret": {id: "backend", secret: backend.secret[:len(backend.secret)-2] + "xx"},
		"no secret":      {id: "backend"},
		"unknown client": {id: "nobody"},
	} {
		r := h.chStart(t, c, p, "alice", h.alice.password)
		chExpect(t, what, r, http.StatusUnauthorized, "invalid_client")
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("%s: WWW-Authenticate %q", what, r.header.Get("WWW-Authenticate"))
		}
	}
	// The secret in the form (client_secret_post) works too; both at once do not.
	post := h.chStart(t, nil, p, "alice", h.alice.password, "client_id", "backend", "client_secret", backend.secret)
	chExpect(t, "client_secret_post", post, http.StatusForbidden, "insufficient_authorization")
	chExpect(t, "two ways of authentication", h.chStart(t, backend, p, "alice", h.alice.password, "client_secret", backend.secret),
		http.StatusBadRequest, "invalid_request")
	chExpect(t, "another client_id than Basic's", h.chStart(t, backend, p, "alice", h.alice.password, "client_id", "mobile"),
		http.StatusBadRequest, "invalid_request")
	if n := h.s.hasher.verifies.Load() - verifies; n != 1 {
		t.Fatalf("%d password hashes, want 1 (only the authenticated client's)", n)
	}
	// The operator switches it on: the same client now gets its challenge,
	// and off again: refused.
	h.s.stile(t, "client", "update", "mobile", "--first-party-app")
	h.nextStep()
	session := h.chSession(t, app, p, h.alice, login.MethodTOTP)
	h.s.stile(t, "client", "update", "mobile", "--first-party-app=false")
	chExpect(t, "switched off mid-way", h.chOTP(t, app, p, session, h.s.code(t, h.alice)), http.StatusBadRequest, "unauthorized_client")
}

func testChallengeParameters(t *testing.T, h *hfixture) {
	app := h.chAdd(t, "mobile", "native", "--first-party-app")
	p := newPKCE()
	verifies := h.s.hasher.verifies.Load()
	for what, c := range map[string]struct {
		extra []string
		code  string
	}{
		"no code_challenge":      {[]string{"code_challenge", ""}, "invalid_request"},
		"plain PKCE":             {[]string{"code_challenge_method", "plain"}, "invalid_request"},
		"no challenge method":    {[]string{"code_challenge_method", ""}, "invalid_request"},
		"a short code_challenge": {[]string{"code_challenge", "abc"}, "invalid_request"},
		"no response_type":       {[]string{"response_type", ""}, "invalid_request"},
		"response_type token":    {[]string{"response_type", "token"}, "unsupported_response_type"},
		"no scope":               {[]string{"scope", ""}, "invalid_request"},
	} {
		chExpect(t, what, h.chStart(t, app, p, "alice", h.alice.password, c.extra...), http.StatusBadRequest, c.code)
	}
	// A repeated parameter, a JSON body, a browser's request, a GET.
	form := url.Values{"response_type": {"code"}, "scope": {"openid"}, "code_challenge": {p.challenge, p.challenge},
		"code_challenge_method": {"S256"}, "username": {"alice"}, "password": {h.alice.password}}
	chExpect(t, "a repeated parameter", h.chPost(t, app, form), http.StatusBadRequest, "invalid_request")
	form.Set("code_challenge", p.challenge)
	chExpect(t, "from a browser", h.chPost(t, app, form, "Origin", "https://evil.example"), http.StatusBadRequest, "invalid_request")
	r := callJSON(t, http.MethodPost, h.s.URL+login.ChallengePath, map[string]string{"client_id": "mobile"})
	chExpect(t, "a JSON body", r, http.StatusBadRequest, "invalid_request")
	r = callJSON(t, http.MethodGet, h.s.URL+login.ChallengePath, nil)
	chExpect(t, "GET", r, http.StatusMethodNotAllowed, "invalid_request")
	if n := h.s.hasher.verifies.Load() - verifies; n != 0 {
		t.Fatalf("%d password hashes for refused requests", n)
	}
	// The scopes are the request's, checked as at /authorize: the
	// positive control of the refusals above.
	h.chSession(t, app, p, h.alice, login.MethodTOTP)
	h.nextStep()
	p = newPKCE()
	r = h.chStart(t, app, p, "alice", h.alice.password, "scope", "openid profile")
	chExpect(t, "scope openid profile", r, http.StatusForbidden, "insufficient_authorization")
	tok, err := app.redeem(p.verifier, h.chCode(t, app, p, r.str("auth_session"), h.s.code(t, h.alice)))
	if err != nil {
		t.Fatal(err)
	}
	if at := app.rp.accessClaims(tok, "mobile"); at["scope"] != "openid profile" || tok.RefreshToken != "" {
		t.Fatalf("scope openid profile: access token scope %v, refresh token %q", at["scope"], tok.RefreshToken)
	}
}

func testChallengeBinding(t *testing.T, h *hfixture) {
	app := h.chAdd(t, "mobile", "native", "--first-party-app")
	other := h.chAdd(t, "other", "native", "--first-party-app")
	p := newPKCE()
	session := h.chSession(t, app, p, h.alice, login.MethodTOTP)
	otp := h.s.code(t, h.alice)
	// Another client, or the same client with another PKCE challenge, is
	// refused, and spends none of the auth_session's tries.
	for i := 0; i < 6; i++ {
		chExpect(t, "another client", h.chOTP(t, other, p, session, otp), http.StatusBadRequest, "invalid_session")
		chExpect(t, "another code_challenge", h.chOTP(t, app, newPKCE(), session, otp), http.StatusBadRequest, "invalid_session")
	}
	unknown := h.chOTP(t, app, p, "no-such-session-"+strings.Repeat("x", 40), otp)
	foreign := h.chOTP(t, other, p, session, otp)
	if mustJSON(unknown.body) != mustJSON(foreign.body) {
		t.Fatalf("an unknown auth_session %v and another client's %v differ", unknown.body, foreign.body)
	}
	// Its own client with its own challenge finishes it; the code is
	// redeemed only with that challenge's verifier, by that client.
	code := h.chCode(t, app, p, session, otp)
	if _, err := other.redeem(p.verifier, code); err == nil || tokenError(t, err) != "invalid_grant" {
		t.Fatalf("another client redeemed the code: %v", err)
	}
	h.nextStep()
	p2 := newPKCE()
	code = h.chCode(t, app, p2, h.chSession(t, app, p2, h.alice, login.MethodTOTP), h.s.code(t, h.alice))
	if _, err := app.redeem(p.verifier, code); err == nil || tokenError(t, err) != "invalid_grant" {
		t.Fatalf("another verifier redeemed the code: %v", err)
	}
	// No browser door opens a challenge's authorization request: not
	// /login while it waits for the code, not the callback once answered.
	h.nextStep()
	p3 := newPKCE()
	session = h.chSession(t, app, p3, h.alice, login.MethodTOTP)
	tx, err := h.s.db.GetLoginTransaction(t.Context(), session)
	if err != nil || tx.Door != "challenge" || !tx.AuthRequestID.Valid {
		t.Fatalf("the auth_session's transaction: %+v %v", tx, err)
	}
	b := newBrowser(t, h.s)
	if pg := b.get(h.s.URL + "/login?authRequestID=" + url.QueryEscape(tx.AuthRequestID.String)); pg.status < 400 {
		t.Fatalf("/login opened a challenge's request: %d", pg.status)
	}
	h.chCode(t, app, p3, session, h.s.code(t, h.alice))
	if pg := b.get(h.s.URL + "/authorize/callback?id=" + url.QueryEscape(tx.AuthRequestID.String)); pg.status < 400 {
		t.Fatalf("the callback answered a challenge's request: %d", pg.status)
	}
}

func testChallengeOtherDoors(t *testing.T, h *hfixture) {
	app := h.chAdd(t, "mobile", "native", "--first-party-app")
	cms := h.dmAdd(t, "cms")
	p := newPKCE()
	session := h.chSession(t, app, p, h.alice, login.MethodTOTP)
	otp := h.s.code(t, h.alice)
	// The JSON login API and the direct mode refuse the challenge's transaction…
	expect(t, "the JSON API", h.call(t, "/login/api/verify", "", map[string]string{"transactionID": session, "otp": otp}),
		http.StatusForbidden, string(login.CodeWrongBrowser))
	expect(t, "the direct mode", h.dmLogin(t, cms.apiKey, "alice", session, login.MethodTOTP, otp),
		http.StatusForbidden, string(login.CodeWrongBrowser))
	// …and the challenge endpoint refuses theirs.
	tx := h.dmAuth(t, cms.apiKey, h.emma, login.MethodEmail)
	emailed := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	chExpect(t, "a direct-mode transaction", h.chOTP(t, app, p, tx, emailed), http.StatusBadRequest, "invalid_session")
	expect(t, "the direct mode's own", h.dmLogin(t, cms.apiKey, "emma", tx, login.MethodEmail, emailed), http.StatusOK, "")
	// The challenge's transaction is still good at its own door.
	app.tokens(t, p, h.chCode(t, app, p, session, otp), h.alice, "pwd otp mfa")
}

func testChallengeExpiry(t *testing.T, h *hfixture) {
	app := h.chAdd(t, "mobile", "native", "--first-party-app")
	p := newPKCE()
	session := h.chSession(t, app, p, h.alice, login.MethodTOTP)
	h.s.clock.Advance(10*time.Minute + time.Second) // the login lifetime
	chExpect(t, "an expired auth_session", h.chOTP(t, app, p, session, h.s.code(t, h.alice)), http.StatusBadRequest, "invalid_session")
	h.nextStep()
	session = h.chSession(t, app, p, h.alice, login.MethodTOTP)
	code := h.chCode(t, app, p, session, h.s.code(t, h.alice))
	// The code lives 60 seconds, as any.
	h.s.clock.Advance(61 * time.Second)
	if _, err := app.redeem(p.verifier, code); err == nil || tokenError(t, err) != "invalid_grant" {
		t.Fatalf("an expired code was redeemed: %v", err)
	}
	// Five wrong codes end the auth_session.
	h.nextStep()
	p = newPKCE()
	session = h.chSession(t, app, p, h.alice, login.MethodTOTP)
	bad := wrongCode(h.s.code(t, h.alice))
	for i := 1; i <= 4; i++ {
		chExpect(t, "a wrong code", h.chOTP(t, app, p, session, bad), http.StatusBadRequest, "invalid_grant")
	}
	chExpect(t, "the fifth wrong code", h.chOTP(t, app, p, session, bad), http.StatusBadRequest, "invalid_session")
	chExpect(t, "the right code after", h.chOTP(t, app, p, session, h.s.code(t, h.alice)), http.StatusBadRequest, "invalid_session")
}

func testChallengeRedirectToWeb(t *testing.T, h *hfixture) {
	// nora has no second factor; this client's policy enrols an
	// authenticator app after a code by email, which needs the browser.
	app := h.chAdd(t, "mobile", "native", "--first-party-app", "--enrollment-policy", "email-then-totp")
	p := newPKCE()
	before := h.mail.count("nora@example.com")
	r := h.chStart(t, app, p, "nora", h.nora.password)
	chExpect(t, "enrolment", r, http.StatusForbidden, "redirect_to_web")
	if r.str("auth_session") != "" || h.mail.count("nora@example.com") != before {
		t.Fatalf("redirect_to_web: %v, %d mails", r.body, h.mail.count("nora@example.com")-before)
	}
	// A wrong password still gets invalid_grant: redirect_to_web says
	// nothing before the password is right.
	chExpect(t, "nora, a wrong password", h.chStart(t, app, p, "nora", "nope"), http.StatusBadRequest, "invalid_grant")
	// With an authenticator enrolled she signs in here.
	var enrolled map[string]any
	jsonInto(t, h.s.stile(t, "user", "totp", "nora", "--json"), &enrolled)
	secret, _ := enrolled["secret"].(string)
	if secret == "" {
		t.Fatalf("stile user totp: %v", enrolled)
	}
	h.nora.totpSecret = secret
	session := h.chSession(t, app, p, h.nora, login.MethodTOTP)
	app.tokens(t, p, h.chCode(t, app, p, session, h.s.code(t, h.nora)), h.nora, "pwd otp mfa")
}

func testChallengeThrottling(t *testing.T, h *hfixture) {
	app := h.chAdd(t, "mobile", "native", "--first-party-app")
	p := newPKCE()
	for i := 1; i <= 5; i++ {
		chExpect(t, "a wrong password", h.chStart(t, app, p, "alice", "nope"), http.StatusBadRequest, "invalid_grant")
		chExpect(t, "an unknown user", h.chStart(t, app, p, "nobody", "nope"), http.StatusBadRequest, "invalid_grant")
	}
	locked, unknown := h.chStart(t, app, p, "alice", h.alice.password), h.chStart(t, app, p, "nobody", "nope")
	chExpect(t, "locked, the right password", locked, http.StatusTooManyRequests, "throttled")
	s, err := strconv.Atoi(locked.header.Get("Retry-After"))
	if err != nil || s <= 0 || s > 30 || locked.body["retry_after"] != float64(s) {
		t.Fatalf("Retry-After %q, retry_after %v: want the same 1..30 seconds", locked.header.Get("Retry-After"), locked.body["retry_after"])
	}
	if unknown.status != locked.status || mustJSON(unknown.body) != mustJSON(locked.body) {
		t.Fatalf("a locked unknown name %d %v differs from a locked account %d %v", unknown.status, unknown.body, locked.status, locked.body)
	}
	// Other accounts are not locked; after the lock alice signs in.
	h.chSession(t, app, p, h.emma, login.MethodEmail)
	h.s.clock.Advance(31 * time.Second)
	session := h.chSession(t, app, p, h.alice, login.MethodTOTP)
	app.tokens(t, p, h.chCode(t, app, p, session, h.s.code(t, h.alice)), h.alice, "pwd otp mfa")
	// The lock counts every door: failures at the direct mode lock the
	// account here too.
	cms := h.dmAdd(t, "cms")
	for i := 1; i <= 5; i++ {
		h.dmCall(t, "authenticate", map[string]string{"username": "alice", "password": "nope", "apiKey": cms.apiKey})
	}
	chExpect(t, "locked through another door", h.chStart(t, app, p, "alice", h.alice.password), http.StatusTooManyRequests, "throttled")
}

func testChallengeCodeReuse(t *testing.T, h *hfixture) {
	app := h.chAdd(t, "mobile", "native", "--first-party-app")
	p := newPKCE()
	code := h.chCode(t, app, p, h.chSession(t, app, p, h.alice, login.MethodTOTP), h.s.code(t, h.alice))
	tok := app.tokens(t, p, code, h.alice, "pwd otp mfa")
	if _, err := app.rp.userinfo(tok); err != nil {
		t.Fatalf("userinfo before the replay: %v", err)
	}
	// The code presented again is refused and revokes what it issued: the
	// access token and the refresh token.
	if _, err := app.redeem(p.verifier, code); err == nil || tokenError(t, err) != "invalid_grant" {
		t.Fatalf("a reused code: %v", err)
	}
	if _, err := app.rp.userinfo(tok); err == nil {
		t.Fatal("the access token outlived its code's replay")
	}
	cfg := app.rp.config
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	if _, err := cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("the refresh token outlived its code's replay")
	}
}

func testChallengeConcurrency(t *testing.T, h *hfixture) {
	backend := h.chAdd(t, "backend", "web", "--first-party-app")
	// One auth_session, its right code sent by eight callers at once: one
	// authorization code, never two.
	p := newPKCE()
	session := h.chSession(t, backend, p, h.emma, login.MethodEmail)
	otp := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	answers := make(chan apiResult, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); answers <- h.chOTP(t, backend, p, session, otp) }()
	}
	wg.Wait()
	close(answers)
	var codes []string
	for r := range answers {
		if r.status == http.StatusOK {
			codes = append(codes, r.str("authorization_code"))
		} else if r.str("error") != "invalid_session" {
			t.Fatalf("a concurrent right code: %d %v", r.status, r.body)
		}
	}
	if len(codes) != 1 {
		t.Fatalf("%d authorization codes from one auth_session, want 1", len(codes))
	}
	backend.tokens(t, p, codes[0], h.emma, "pwd otp mfa")
	// Twelve wrong codes at once: at most five are evaluated, and the
	// auth_session is then dead, for the right code too.
	p = newPKCE()
	session = h.chSession(t, backend, p, h.emma, login.MethodEmail)
	otp = codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	wrongs := make(chan apiResult, 12)
	for range 12 {
		wg.Add(1)
		go func() { defer wg.Done(); wrongs <- h.chOTP(t, backend, p, session, wrongCode(otp)) }()
	}
	wg.Wait()
	close(wrongs)
	evaluated := 0
	for r := range wrongs {
		switch r.str("error") {
		case "invalid_grant":
			evaluated++
		case "invalid_session", "throttled":
		default:
			t.Fatalf("a concurrent wrong code: %d %v", r.status, r.body)
		}
	}
	if evaluated > 4 {
		t.Fatalf("%d wrong codes answered as wrong, want at most 4 (the fifth ends the auth_session)", evaluated)
	}
	chExpect(t, "the right code after", h.chOTP(t, backend, p, session, otp), http.StatusBadRequest, "invalid_session")
}

// TestChallengeClientAuthLimit: client authentication at the challenge
// endpoint shares the token endpoints' per-address count, so guessing a
// client secret here is bounded as it is at /oauth/token; another address
// is not affected.
func TestChallengeClientAuthLimit(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			mb, gw := newMailbox(t), newSMSGateway(t)
			s := startServer(t, d.URL(t), delivery(t, mb, gw), trustLoopback, func(c *appConfig) {
				c.OPLimits = &op.Limits{AuthorizePerAddress: storage.Rate{Limit: 5, Per: time.Minute},
					TokenPerAddress: storage.Rate{Limit: 3, Per: time.Minute}}
			})
			h := seedHeadless(t, s, mb, gw)
			backend := h.chAdd(t, "backend", "web", "--first-party-app")
			guess := &chClient{id: "backend", secret: "a-guessed-secret"}
			p := newPKCE()
			start := func(c *chClient, addr string) apiResult {
				return h.chPost(t, c, url.Values{"response_type": {"code"}, "scope": {"openid"}, "code_challenge": {p.challenge},
					"code_challenge_method": {"S256"}, "username": {"alice"}, "password": {h.alice.password}}, "X-Forwarded-For", addr)
			}
			const attacker, bystander = "192.0.2.61", "198.51.100.61"
			for i := range 3 {
				chExpect(t, fmt.Sprintf("guess %d", i+1), start(guess, attacker), http.StatusUnauthorized, "invalid_client")
			}
			r := start(backend, attacker)
			chExpect(t, "the right secret past the limit", r, http.StatusTooManyRequests, "throttled")
			if r.header.Get("Retry-After") == "" {
				t.Fatal("throttled without Retry-After")
			}
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if a := from(t, attacker, req); a.status != http.StatusTooManyRequests {
				t.Fatalf("the token endpoint from the same address: %d %s", a.status, a.body)
			}
			// Positive control: another address is admitted and goes on to the second factor.
			chExpect(t, "another address", start(backend, bystander), http.StatusForbidden, "insufficient_authorization")
		})
	}
}
