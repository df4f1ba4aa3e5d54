package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

const (
	appRedirect  = "https://app.example.com/cb"
	appSignedOut = "https://app.example.com/signed-out"
	apiAudience  = "https://api.example.com"
)

// fixture is a running stile with a confidential first-party client "app"
// (refresh tokens allowed), a user "alice" with TOTP enrolled, and a relying
// party for "app".
type fixture struct {
	s      *server
	secret string
	alice  *user
	rp     *relyingParty
}

func newFixture(t *testing.T, dbURL string, opts ...func(*appConfig)) *fixture {
	s := startServer(t, dbURL, opts...)
	f := &fixture{s: s}
	f.secret = s.addClient(t, &storage.Client{ID: "app", Name: "Example App", Type: storage.ClientWeb,
		RedirectURIs: storage.Strings{appRedirect}, RequirePKCE: true, Audiences: storage.Strings{apiAudience},
		FirstParty: true, GrantTypes: storage.Strings{storage.GrantAuthorizationCode, storage.GrantRefreshToken},
		PostLogoutRedirectURIs: storage.Strings{appSignedOut}})
	f.alice = s.addUser(t, "alice", true)
	f.rp = newRP(t, s, "app", f.secret, appRedirect)
	return f
}

// TestSignIn drives stile as a browser and as a relying party would, on
// SQLite and on PostgreSQL. Every refusal sits beside the success it
// differs from.
func TestSignIn(t *testing.T) {
	scenarios := []struct {
		name string
		fn   func(*testing.T, *fixture)
	}{
		{"HappyPath", testHappyPath},
		{"UnknownUserLooksLikeWrongPassword", testUnknownUserLooksLikeWrongPassword},
		{"WrongOTPThenRight", testWrongOTPThenRight},
		{"TooManyWrongOTPsKillTheTransaction", testDeadTransaction},
		{"ReplayedTOTPStep", testReplayedTOTPStep},
		{"AuthorizationCodeSingleUse", testCodeSingleUse},
		{"AuthorizationCodeExpires", testCodeExpires},
		{"PKCE", testPKCE},
		{"UnregisteredRedirectURI", testUnregisteredRedirectURI},
		{"LoginFromAnotherBrowser", testLoginFromAnotherBrowser},
		{"CallbackAnswersOnce", testCallbackAnswersOnce},
		{"DisabledUser", testDisabledUser},
		{"UserWithoutTOTP", testUserWithoutTOTP},
		{"Throttling", testThrottling},
		{"PromptNone", testPromptNone},
		{"LoginExpires", testLoginExpires},
		{"PageSecurity", testPageSecurity},
		{"UserinfoErrors", testUserinfoErrors},
		{"AuthorizeByPOST", testAuthorizeByPOST},
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { sc.fn(t, newFixture(t, d.URL(t))) })
			}
		})
	}
}

// passwordPage opens an authorization request and lands on the login form.
func (f *fixture) passwordPage(t *testing.T, b *browser, az *authorization) *page {
	t.Helper()
	p := b.get(az.url)
	if p.status != http.StatusOK || p.url.Path != "/login" {
		t.Fatalf("authorize: landed on %s with status %d:\n%s", p.url, p.status, p.body)
	}
	return p
}

// otpPage submits the password and lands on the code form.
func (f *fixture) otpPage(t *testing.T, b *browser, az *authorization, u *user) *page {
	t.Helper()
	p := b.submit(f.passwordPage(t, b, az), map[string]string{"username": u.Username, "password": u.password})
	if p.status != http.StatusOK || p.url.Path != "/login/otp" {
		t.Fatalf("password: landed on %s with status %d:\n%s", p.url, p.status, p.body)
	}
	return p
}

// finish submits a code and returns the client redirect the browser was
// sent to.
func (f *fixture) finish(t *testing.T, b *browser, p *page, code string) *url.URL {
	t.Helper()
	p = b.submit(p, map[string]string{"otp": code})
	loc := p.location(t)
	if loc.Scheme+"://"+loc.Host+loc.Path != appRedirect {
		t.Fatalf("after the code: redirected to %s, want the client's redirect URI", loc)
	}
	return loc
}

// signIn runs both steps for u and returns the authorization code.
func (f *fixture) signIn(t *testing.T, b *browser, az *authorization, u *user) string {
	t.Helper()
	loc := f.finish(t, b, f.otpPage(t, b, az, u), f.s.code(t, u))
	if loc.Query().Get("state") != az.state || loc.Query().Get("iss") != f.s.URL {
		t.Fatalf("state %q iss %q, want %q and the issuer (RFC 9207)", loc.Query().Get("state"), loc.Query().Get("iss"), az.state)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc)
	}
	return code
}

func testHappyPath(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	az := f.rp.authorize()
	before := f.s.clock.Now().Unix()
	code := f.signIn(t, b, az, f.alice)

	tok, err := f.rp.exchange(code, az.verifier)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	id := f.rp.idClaims(tok, az.nonce)
	if id["sub"] != f.alice.ID || id["uid"] != f.alice.ID {
		t.Errorf("ID token sub=%v uid=%v, want the user's ID %s", id["sub"], id["uid"], f.alice.ID)
	}
	checkUserClaims(t, "ID token", id)
	if at, _ := id["auth_time"].(float64); int64(at) < before || int64(at) > f.s.clock.Now().Unix() {
		t.Errorf("auth_time %v, want the time of the sign-in", id["auth_time"])
	}
	if amr := strings.Join(toStrings(id["amr"]), " "); amr != "pwd otp mfa" {
		t.Errorf("amr = %q, want pwd otp mfa", amr)
	}
	if id["azp"] != "app" {
		t.Errorf("azp = %v, want app", id["azp"])
	}

	at := f.rp.accessClaims(tok, apiAudience)
	if at["sub"] != f.alice.ID || at["uid"] != f.alice.ID {
		t.Errorf("access token sub=%v uid=%v", at["sub"], at["uid"])
	}
	checkUserClaims(t, "access token", at)
	if at["scope"] != "openid profile email" {
		t.Errorf("access token scope = %v", at["scope"])
	}

	info, err := f.rp.userinfo(tok)
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info["sub"] != f.alice.ID || info["preferred_username"] != "alice" || info["email"] != "alice@example.com" {
		t.Errorf("userinfo = %v", info)
	}
	checkUserClaims(t, "userinfo", info)

	// The token response must not be cached (RFC 6749 §5.1).
	b2 := newBrowser(t, f.s)
	az2 := f.rp.authorize()
	f.s.clock.Advance(30 * time.Second) // a fresh TOTP step for the second sign-in
	code2 := f.signIn(t, b2, az2, f.alice)
	resp, body := rawToken(t, f.s, url.Values{"grant_type": {"authorization_code"}, "code": {code2},
		"redirect_uri": {appRedirect}, "code_verifier": {az2.verifier}}, "app", f.secret)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("token response: status %d, Cache-Control %q, body %v", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
	}
}

func checkUserClaims(t *testing.T, where string, claims map[string]any) {
	t.Helper()
	if roles := toStrings(claims["roles"]); !slices.Equal(roles, []string{"editor", "reviewer"}) {
		t.Errorf("%s roles = %v", where, claims["roles"])
	}
	attrs, _ := claims["attributes"].(map[string]any)
	if attrs["plan"] != "pro" || attrs["seats"] != float64(3) {
		t.Errorf("%s attributes = %v", where, claims["attributes"])
	}
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func testUnknownUserLooksLikeWrongPassword(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	az := f.rp.authorize()
	login := f.passwordPage(t, b, az)
	attempt := func(username, password string) (*page, int64) {
		before := f.s.hasher.verifies.Load()
		p := b.submit(login, map[string]string{"username": username, "password": password})
		return p, f.s.hasher.verifies.Load() - before
	}
	wrong, wrongHashes := attempt("alice", "not the password")
	unknown, unknownHashes := attempt("mallory", "not the password")
	if wrong.status != http.StatusUnauthorized || unknown.status != wrong.status {
		t.Errorf("status: wrong password %d, unknown user %d; want both 401", wrong.status, unknown.status)
	}
	if strings.Replace(unknown.body, "mallory", "alice", 1) != wrong.body {
		t.Errorf("bodies differ:\nwrong password:\n%s\nunknown user:\n%s", wrong.body, unknown.body)
	}
	if wrongHashes != 1 || unknownHashes != 1 {
		t.Errorf("argon2id computations: wrong password %d, unknown user %d; want exactly 1 each", wrongHashes, unknownHashes)
	}
	// Positive control: the right password on the same form moves on.
	p, hashes := attempt("alice", f.alice.password)
	if p.status != http.StatusOK || p.url.Path != "/login/otp" || hashes != 1 {
		t.Errorf("right password: %s status %d, %d hashes", p.url, p.status, hashes)
	}
}

func testWrongOTPThenRight(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	az := f.rp.authorize()
	p := f.otpPage(t, b, az, f.alice)
	wrong := b.submit(p, map[string]string{"otp": wrongCode(f.s.code(t, f.alice))})
	if wrong.status != http.StatusForbidden || !strings.Contains(wrong.body, "not right") {
		t.Fatalf("wrong code: status %d:\n%s", wrong.status, wrong.body)
	}
	loc := f.finish(t, b, wrong, f.s.code(t, f.alice))
	if _, err := f.rp.exchange(loc.Query().Get("code"), az.verifier); err != nil {
		t.Fatalf("the right code after a wrong one: %v", err)
	}
}

// wrongCode is a code that differs from the right one.
func wrongCode(right string) string {
	if right == "000000" {
		return "000001"
	}
	return "000000"
}

func testDeadTransaction(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	az := f.rp.authorize()
	p := f.otpPage(t, b, az, f.alice)
	bad := wrongCode(f.s.code(t, f.alice))
	for i := 1; i <= 4; i++ {
		if r := b.submit(p, map[string]string{"otp": bad}); r.status != http.StatusForbidden {
			t.Fatalf("wrong code %d: status %d, want 403", i, r.status)
		}
	}
	dead := b.submit(p, map[string]string{"otp": bad})
	if dead.status != http.StatusGone || !strings.Contains(dead.body, "Too many wrong codes") {
		t.Fatalf("fifth wrong code: status %d, want 410:\n%s", dead.status, dead.body)
	}
	if r := b.submit(p, map[string]string{"otp": f.s.code(t, f.alice)}); r.status != http.StatusGone {
		t.Fatalf("right code on a dead transaction: status %d, want 410", r.status)
	}
	// Five failures also locked the account for a while; once that passes, the
	// same authorization request can start over from the password.
	f.s.clock.Advance(31 * time.Second)
	restart := dead.link(t, "Sign in again")
	if restart.Path != "/login" || restart.Query().Get("authRequestID") != p.url.Query().Get("authRequestID") {
		t.Fatalf("dead transaction page offers %s, want a fresh start of the same request at /login", restart)
	}
	p = b.get(dead.url.ResolveReference(restart).String())
	p = b.submit(p, map[string]string{"username": "alice", "password": f.alice.password})
	loc := f.finish(t, b, p, f.s.code(t, f.alice))
	if _, err := f.rp.exchange(loc.Query().Get("code"), az.verifier); err != nil {
		t.Fatalf("exchange after starting over: %v", err)
	}
}

func testReplayedTOTPStep(t *testing.T, f *fixture) {
	code := f.s.code(t, f.alice)
	first := newBrowser(t, f.s)
	f.finish(t, first, f.otpPage(t, first, f.rp.authorize(), f.alice), code)

	second := newBrowser(t, f.s)
	p := f.otpPage(t, second, f.rp.authorize(), f.alice)
	if r := second.submit(p, map[string]string{"otp": code}); r.status != http.StatusForbidden {
		t.Fatalf("replayed code: status %d, want 403", r.status)
	}
	f.s.clock.Advance(30 * time.Second)
	f.finish(t, second, p, f.s.code(t, f.alice))
}

func testCodeSingleUse(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	az := f.rp.authorize()
	code := f.signIn(t, b, az, f.alice)
	tok, err := f.rp.exchange(code, az.verifier)
	if err != nil {
		t.Fatalf("first exchange: %v", err)
	}
	if _, err := f.rp.userinfo(tok); err != nil {
		t.Fatalf("userinfo before the replay: %v", err)
	}
	_, err = f.rp.exchange(code, az.verifier)
	if err == nil || tokenError(t, err) != "invalid_grant" {
		t.Fatalf("second exchange: %v, want invalid_grant", err)
	}
	// The replay may mean the code was stolen: what it issued is revoked.
	if _, err := f.rp.userinfo(tok); err == nil {
		t.Fatal("userinfo still accepts the access token issued from a replayed code")
	}
}

func testCodeExpires(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	az := f.rp.authorize()
	code := f.signIn(t, b, az, f.alice)
	f.s.clock.Advance(61 * time.Second)
	if _, err := f.rp.exchange(code, az.verifier); err == nil || tokenError(t, err) != "invalid_grant" {
		t.Fatalf("code after 61s: %v, want invalid_grant", err)
	}
	az = f.rp.authorize()
	f.s.clock.Advance(30 * time.Second) // a fresh TOTP step
	code = f.signIn(t, newBrowser(t, f.s), az, f.alice)
	f.s.clock.Advance(59 * time.Second)
	if _, err := f.rp.exchange(code, az.verifier); err != nil {
		t.Fatalf("code after 59s: %v", err)
	}
}

func testPKCE(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	az := f.rp.authorize()
	code := f.signIn(t, b, az, f.alice)
	_, err := f.rp.exchange(code, "wrong-verifier-wrong-verifier-wrong-verifier-123")
	if err == nil || tokenError(t, err) != "invalid_grant" {
		t.Fatalf("wrong verifier: %v, want invalid_grant", err)
	}

	// plain, or a challenge without a method (which means plain), is refused
	// before any login.
	for _, method := range []string{"plain", ""} {
		plain := f.rp.authorize("code_challenge", az.verifier, "code_challenge_method", method)
		loc := b.get(plain.url).location(t)
		if loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != plain.state {
			t.Errorf("code_challenge_method=%q: redirected to %s, want invalid_request", method, loc)
		}
	}
	// A confidential client requires PKCE by default.
	noPKCE := f.rp.authorize("code_challenge", "", "code_challenge_method", "")
	if loc := b.get(noPKCE.url).location(t); loc.Query().Get("error") != "invalid_request" {
		t.Errorf("no PKCE for a default web client: %s", loc)
	}

	// A public client always requires it.
	f.s.addClient(t, &storage.Client{ID: "spa", Type: storage.ClientSPA, RedirectURIs: storage.Strings{appRedirect}, FirstParty: true})
	spa := newRP(t, f.s, "spa", "", appRedirect)
	noPKCE = spa.authorize("code_challenge", "", "code_challenge_method", "")
	if loc := b.get(noPKCE.url).location(t); loc.Query().Get("error") != "invalid_request" {
		t.Errorf("no PKCE for a public client: %s", loc)
	}
	// Positive control: the public client with S256 signs in and exchanges.
	f.s.clock.Advance(30 * time.Second)
	withPKCE := spa.authorize()
	code = f.signIn(t, newBrowser(t, f.s), withPKCE, f.alice)
	if _, err := spa.exchange(code, withPKCE.verifier); err != nil {
		t.Fatalf("public client with PKCE: %v", err)
	}
}

func testUnregisteredRedirectURI(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	az := f.rp.authorize("redirect_uri", "https://evil.example.com/cb")
	p := b.get(az.url)
	if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
		t.Fatalf("unregistered redirect_uri: status %d, Location %q; want a 400 page and no redirect", p.status, p.header.Get("Location"))
	}
	if !strings.Contains(p.header.Get("Content-Type"), "text/html") || !strings.Contains(p.body, "redirect_uri") {
		t.Errorf("error page:\n%s", p.body)
	}
	f.passwordPage(t, b, f.rp.authorize()) // the registered one works
}

func testLoginFromAnotherBrowser(t *testing.T, f *fixture) {
	owner, other := newBrowser(t, f.s), newBrowser(t, f.s)
	az := f.rp.authorize()
	login := f.passwordPage(t, owner, az)

	// The other browser cannot take over the hand-off…
	if p := other.get(login.url.String()); p.status != http.StatusForbidden {
		t.Errorf("other browser at /login: status %d, want 403", p.status)
	}
	// …nor submit the password with the request ID…
	if p := other.submit(login, map[string]string{"username": "alice", "password": f.alice.password}); p.status != http.StatusForbidden {
		t.Errorf("other browser posting the password: status %d, want 403", p.status)
	}
	// …nor the code with the transaction ID.
	otp := owner.submit(login, map[string]string{"username": "alice", "password": f.alice.password})
	if p := other.submit(otp, map[string]string{"otp": f.s.code(t, f.alice)}); p.status != http.StatusForbidden {
		t.Errorf("other browser posting the code: status %d, want 403", p.status)
	}
	// The owner finishes. Before its browser reaches the callback, the other
	// browser tries to collect the code there, and cannot.
	owner.noFollow = true
	done := owner.submit(otp, map[string]string{"otp": f.s.code(t, f.alice)})
	owner.noFollow = false
	callback := done.location(t)
	if callback.Path != "/authorize/callback" {
		t.Fatalf("owner: after the code, redirected to %s, want stile's callback", callback)
	}
	if p := other.get(callback.String()); p.status != http.StatusForbidden || p.header.Get("Location") != "" {
		t.Errorf("other browser at the callback: status %d Location %q, want 403 and no code", p.status, p.header.Get("Location"))
	}
	code := owner.get(callback.String()).location(t).Query().Get("code")
	if _, err := f.rp.exchange(code, az.verifier); err != nil {
		t.Fatalf("owner's code: %v", err)
	}
}

func testCallbackAnswersOnce(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	az := f.rp.authorize()
	done := b.submit(f.otpPage(t, b, az, f.alice), map[string]string{"otp": f.s.code(t, f.alice)})
	if done.location(t).Query().Get("code") == "" {
		t.Fatal("first callback gave no code")
	}
	again := b.get(done.url.String())
	if again.status != http.StatusGone || again.header.Get("Location") != "" {
		t.Fatalf("second callback: status %d Location %q, want 410 and no code", again.status, again.header.Get("Location"))
	}
}

func testDisabledUser(t *testing.T, f *fixture) {
	bob := f.s.addUser(t, "bob", true)
	f.s.db.UpdateUser(t.Context(), bob.ID, func(u *storage.User) error { u.Disabled = true; return nil })
	b := newBrowser(t, f.s)
	p := b.submit(f.passwordPage(t, b, f.rp.authorize()), map[string]string{"username": "bob", "password": bob.password})
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "disabled") {
		t.Fatalf("disabled user: status %d:\n%s", p.status, p.body)
	}
	// A wrong password for a disabled user says nothing about the account.
	p = b.submit(f.passwordPage(t, b, f.rp.authorize()), map[string]string{"username": "bob", "password": "wrong"})
	if p.status != http.StatusUnauthorized {
		t.Fatalf("disabled user, wrong password: status %d, want 401", p.status)
	}
	f.signIn(t, b, f.rp.authorize(), f.alice) // an enabled user signs in
}

func testUserWithoutTOTP(t *testing.T, f *fixture) {
	carol := f.s.addUser(t, "carol", false)
	b := newBrowser(t, f.s)
	p := b.submit(f.passwordPage(t, b, f.rp.authorize()), map[string]string{"username": "carol", "password": carol.password})
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "no second factor") {
		t.Fatalf("user without TOTP: status %d:\n%s", p.status, p.body)
	}
	if strings.Contains(p.body, "otpauth") || strings.Contains(strings.ToLower(p.body), "secret") {
		t.Fatal("a page after the password alone shows enrolment material")
	}
	f.signIn(t, b, f.rp.authorize(), f.alice) // an enrolled user signs in
}

func testThrottling(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	login := f.passwordPage(t, b, f.rp.authorize())
	for _, name := range []string{"alice", "nobody"} {
		for i := 1; i <= 5; i++ {
			if p := b.submit(login, map[string]string{"username": name, "password": "wrong"}); p.status != http.StatusUnauthorized {
				t.Fatalf("%s failure %d: status %d, want 401", name, i, p.status)
			}
		}
		before := f.s.hasher.verifies.Load()
		p := b.submit(login, map[string]string{"username": name, "password": "wrong"})
		if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
			t.Fatalf("%s sixth attempt: status %d Retry-After %q, want 429 with Retry-After", name, p.status, p.header.Get("Retry-After"))
		}
		if f.s.hasher.verifies.Load() != before {
			t.Errorf("%s: a locked attempt still computed a hash", name)
		}
	}
	// Locked, even the right password waits; the lock expires on its own.
	if p := b.submit(login, map[string]string{"username": "alice", "password": f.alice.password}); p.status != http.StatusTooManyRequests {
		t.Fatalf("right password while locked: status %d, want 429", p.status)
	}
	f.s.clock.Advance(31 * time.Second)
	p := b.submit(login, map[string]string{"username": "alice", "password": f.alice.password})
	if p.status != http.StatusOK || p.url.Path != "/login/otp" {
		t.Fatalf("right password after the lock: %s status %d", p.url, p.status)
	}
}

func testPromptNone(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	az := f.rp.authorize("prompt", "none")
	loc := b.get(az.url).location(t)
	if loc.Query().Get("error") != "login_required" || loc.Query().Get("state") != az.state || loc.Query().Get("code") != "" ||
		loc.Query().Get("iss") != f.s.URL {
		t.Fatalf("prompt=none without a session: %s, want login_required with state and iss", loc)
	}
	f.passwordPage(t, b, f.rp.authorize()) // without prompt=none the login shows
}

func testLoginExpires(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	p := f.otpPage(t, b, f.rp.authorize(), f.alice)
	f.s.clock.Advance(11 * time.Minute)
	if r := b.submit(p, map[string]string{"otp": f.s.code(t, f.alice)}); r.status != http.StatusGone {
		t.Fatalf("code after the login expired: status %d, want 410", r.status)
	}
	f.signIn(t, b, f.rp.authorize(), f.alice) // a fresh request works
}

func testPageSecurity(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	p := f.passwordPage(t, b, f.rp.authorize())
	csp := p.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	if p.header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("Referrer-Policy = %q", p.header.Get("Referrer-Policy"))
	}
	if !strings.Contains(strings.Join(p.header.Values("Set-Cookie"), ";"), "HttpOnly") ||
		!strings.Contains(strings.Join(p.header.Values("Set-Cookie"), ";"), "SameSite=Lax") {
		t.Errorf("binding cookie flags: %q", p.header.Values("Set-Cookie"))
	}
	if strings.Contains(p.body, "<script") {
		t.Error("login page carries a script")
	}
	// A form posted from another site is refused before it is read…
	action, values := p.form(t)
	values.Set("username", "alice")
	values.Set("password", f.alice.password)
	target := p.url.ResolveReference(action).String()
	if r := b.post(target, values, "Origin", "https://evil.example.com", "Sec-Fetch-Site", "cross-site"); r.status != http.StatusForbidden {
		t.Errorf("cross-site form post: status %d, want 403", r.status)
	}
	// …and the same post from stile's own page goes through.
	if r := b.post(target, values, "Origin", f.s.URL, "Sec-Fetch-Site", "same-origin"); r.url.Path != "/login/otp" {
		t.Errorf("same-origin form post: landed on %s status %d", r.url, r.status)
	}
}

func testUserinfoErrors(t *testing.T, f *fixture) {
	get := func(auth string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, f.s.URL+"/userinfo", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get(""); r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	if r := get("Bearer not-a-token"); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("malformed token: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	b := newBrowser(t, f.s)
	az := f.rp.authorize()
	tok, err := f.rp.exchange(f.signIn(t, b, az, f.alice), az.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if r := get("Bearer " + tok.AccessToken); r.StatusCode != http.StatusOK {
		t.Fatalf("valid token: %d", r.StatusCode)
	}
	f.s.clock.Advance(11 * time.Minute) // past the access token's 10 minutes
	if r := get("Bearer " + tok.AccessToken); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("expired token: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
}

func testAuthorizeByPOST(t *testing.T, f *fixture) {
	b := newBrowser(t, f.s)
	az := f.rp.authorize()
	u, _ := url.Parse(az.url)
	p := b.post(f.s.URL+"/authorize", u.Query())
	if p.status != http.StatusOK || p.url.Path != "/login" {
		t.Fatalf("POST /authorize: landed on %s status %d", p.url, p.status)
	}
	p = b.submit(p, map[string]string{"username": "alice", "password": f.alice.password})
	loc := f.finish(t, b, p, f.s.code(t, f.alice))
	if loc.Query().Get("state") != az.state {
		t.Fatalf("state %q, want %q", loc.Query().Get("state"), az.state)
	}
	tok, err := f.rp.exchange(loc.Query().Get("code"), az.verifier)
	if err != nil {
		t.Fatal(err)
	}
	f.rp.idClaims(tok, az.nonce)
}
