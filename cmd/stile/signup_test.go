package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// sfixture is a server with real SMTP delivery and three clients: "app"
// offers sign-up (new accounts get role member and plan=free, and set up
// an authenticator app), "mailapp" offers it with the email enrolment
// policy (the proven address is the factor), "closed" does not offer it.
type sfixture struct {
	*fixture
	mail   *mailbox
	mailRP *relyingParty
	closed *relyingParty
	hashes *hashCounter
}

// hashCounter counts the new password hashes the server makes.
type hashCounter struct {
	login.Hasher
	n atomic.Int64
}

func (h *hashCounter) Hash(password string) (string, error) {
	h.n.Add(1)
	return h.Hasher.Hash(password)
}

func newSignupFixture(t *testing.T, dbURL string, opts ...func(*appConfig)) *sfixture {
	mb, gw := newMailbox(t), newSMSGateway(t)
	hashes := &hashCounter{}
	count := func(c *appConfig) { hashes.Hasher = c.Hasher; c.Hasher = hashes }
	s := startServer(t, dbURL, append([]func(*appConfig){delivery(t, mb, gw), count}, opts...)...)
	f := &sfixture{fixture: &fixture{s: s}, mail: mb, hashes: hashes}
	client := func(id string, change func(*storage.Client)) *relyingParty {
		redirect := "https://" + id + ".example.com/cb"
		c := &storage.Client{ID: id, Name: id, Type: storage.ClientWeb, FirstParty: true, RedirectURIs: storage.Strings{redirect},
			RequirePKCE: true, Audiences: storage.Strings{apiAudience}, GrantTypes: storage.Strings{storage.GrantAuthorizationCode}}
		change(c)
		return newRP(t, s, id, s.addClient(t, c), redirect)
	}
	f.rp = client("app", func(c *storage.Client) {
		c.Signup, c.SignupRoles, c.SignupAttributes = true, storage.Strings{"member"}, storage.Attributes{"plan": "free"}
	})
	f.mailRP = client("mailapp", func(c *storage.Client) {
		c.Signup, c.SignupRoles, c.EnrollmentPolicy = true, storage.Strings{"reader"}, storage.EnrollEmail
	})
	f.closed = client("closed", func(*storage.Client) {})
	f.alice = s.addUser(t, "alice", true)
	return f
}

// TestSignup: self-service sign-up on stile's pages, over real HTTP and
// real SMTP, on SQLite and PostgreSQL; tokens verified with go-oidc.
func TestSignup(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, sc := range []struct {
				name string
				fn   func(*testing.T, *sfixture)
			}{
				{"WithTOTP", testSignupTOTP},
				{"EmailPolicy", testSignupEmailPolicy},
				{"WrongCodesBounded", testSignupWrongCodes},
				{"ExistingEmail", testSignupExistingEmail},
				{"UsernameTaken", testSignupUsernameTaken},
				{"SwitchedOff", testSignupSwitchedOff},
				{"OtherBrowser", testSignupOtherBrowser},
				{"Expires", testSignupExpires},
				{"ResendAndConsent", testSignupResend},
				{"UsernameRace", testSignupUsernameRace},
			} {
				t.Run(sc.name, func(t *testing.T) { sc.fn(t, newSignupFixture(t, d.URL(t))) })
			}
		})
	}
}

// signupForm opens rp's authorization in b and follows the password
// page's "Create an account" link to the sign-up form.
func (f *sfixture) signupForm(t *testing.T, b *browser, rp *relyingParty) (*page, *authorization) {
	t.Helper()
	az := rp.authorize()
	login := b.get(az.url)
	if login.status != http.StatusOK || login.url.Path != "/login" {
		t.Fatalf("authorize: %d at %s", login.status, login.url)
	}
	form := b.get(login.url.ResolveReference(login.link(t, "Create an account")).String())
	if form.status != http.StatusOK || !strings.Contains(form.body, `name="email"`) || !strings.Contains(form.body, `name="confirm"`) {
		t.Fatalf("the sign-up form: %d\n%s", form.status, form.body)
	}
	return form, az
}

// startSignup submits the sign-up form and expects the code page.
func (f *sfixture) startSignup(t *testing.T, b *browser, form *page, username, email, password string) *page {
	t.Helper()
	p := b.submit(form, map[string]string{"username": username, "email": email, "password": password, "confirm": password})
	if p.status != http.StatusOK || p.url.Path != "/login/signup/step" || !strings.Contains(p.body, "We sent a 6-digit code to "+email) {
		t.Fatalf("sign-up: %d at %s\n%s", p.status, p.url, p.body)
	}
	return p
}

func (f *sfixture) signupCode(t *testing.T, to string) string {
	t.Helper()
	return codeIn(t, f.mail.last(t, to, "create your account"))
}

func (f *sfixture) noUser(t *testing.T, what, username, email string) {
	t.Helper()
	if _, err := f.s.db.GetUserByUsername(t.Context(), username); err == nil {
		t.Fatalf("%s: user %s exists", what, username)
	}
	if email != "" {
		if _, err := f.s.db.GetUserByEmail(t.Context(), email); err == nil {
			t.Fatalf("%s: an account with %s exists", what, email)
		}
	}
}

// landed checks that p is the client's redirect URI with a code for az,
// and returns the verified ID token's claims.
func landed(t *testing.T, rp *relyingParty, p *page, az *authorization) map[string]any {
	t.Helper()
	loc := p.location(t)
	if loc.Query().Get("state") != az.state || loc.Query().Get("code") == "" || loc.Host != rp.config.ClientID+".example.com" {
		t.Fatalf("after sign-up: redirected to %s", loc)
	}
	tok, err := rp.exchange(loc.Query().Get("code"), az.verifier)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	claims := rp.idClaims(tok, az.nonce)
	at := rp.accessClaims(tok, apiAudience)
	if at["uid"] != claims["uid"] || !slices.Equal(toStrings(at["roles"]), toStrings(claims["roles"])) {
		t.Fatalf("access token %v, ID token %v", at, claims)
	}
	return claims
}

// testSignupTOTP: the whole sign-up — form (a weak and a mistyped
// password refused), an emailed code (a wrong one refused), a new
// authenticator confirmed — makes an account with the client's default
// roles and attributes and its TOTP, and nothing exists until then; the
// tokens carry them, amr says mfa; the account signs in again later.
func testSignupTOTP(t *testing.T, f *sfixture) {
	b := newBrowser(t, f.s)
	form, az := f.signupForm(t, b, f.rp)
	if p := b.submit(form, map[string]string{"username": "zoe", "email": "zoe@example.com", "password": "short", "confirm": "short"}); p.status != http.StatusBadRequest ||
		!strings.Contains(p.body, "at least 8") {
		t.Fatalf("a weak password: %d\n%s", p.status, p.body)
	}
	pw := "zoe's long passphrase"
	if p := b.submit(form, map[string]string{"username": "zoe", "email": "zoe@example.com", "password": pw, "confirm": pw + "!"}); p.status != http.StatusBadRequest {
		t.Fatalf("two different passwords: %d", p.status)
	}
	if f.mail.count("zoe@example.com") != 0 {
		t.Fatal("a refused form sent mail")
	}
	hashes := f.hashes.n.Load()
	step := f.startSignup(t, b, form, "zoe", "zoe@example.com", pw)
	if n := f.hashes.n.Load() - hashes; n != 1 {
		t.Fatalf("a sign-up cost %d password hashes, want 1", n)
	}
	f.noUser(t, "before the code", "zoe", "zoe@example.com")
	code := f.signupCode(t, "zoe@example.com")

	wrong := b.submit(step, map[string]string{"otp": wrongCode(code)})
	if wrong.status != http.StatusForbidden || !strings.Contains(wrong.body, "4 tries left") {
		t.Fatalf("a wrong code: %d\n%s", wrong.status, wrong.body)
	}
	secretPage := b.submit(step, map[string]string{"otp": code})
	if secretPage.status != http.StatusOK || !hasSecret(secretPage) {
		t.Fatalf("the right code: %d\n%s", secretPage.status, secretPage.body)
	}
	secret := secretOn(t, secretPage)
	f.noUser(t, "before the authenticator", "zoe", "zoe@example.com")
	if again := b.get(f.s.URL + "/login/signup/step?signupID=" + url.QueryEscape(formValue(t, secretPage, "signupID"))); secretOn(t, again) != secret {
		t.Fatal("the step page, reloaded, shows another secret")
	}
	totp := func() string { c, _ := login.TOTPCode(secret, f.s.clock.Now()); return c }
	if p := b.submit(secretPage, map[string]string{"otp": wrongCode(totp())}); p.status != http.StatusForbidden || secretOn(t, p) != secret {
		t.Fatalf("a wrong first code: %d", p.status)
	}
	mark := lastID(t, f.s)
	b.noFollow = true
	done := b.submit(secretPage, map[string]string{"otp": totp()})
	b.noFollow = false
	if done.location(t).Path != "/authorize/callback" {
		t.Fatalf("the first code: %d to %s", done.status, done.location(t))
	}
	claims := landed(t, f.rp, b.get(done.location(t).String()), az)
	u, err := f.s.db.GetUserByUsername(t.Context(), "zoe")
	if err != nil {
		t.Fatal(err)
	}
	attrs, _ := claims["attributes"].(map[string]any)
	if claims["uid"] != u.ID || !slices.Equal(toStrings(claims["roles"]), []string{"member"}) || attrs["plan"] != "free" ||
		strings.Join(toStrings(claims["amr"]), " ") != "pwd otp mfa" {
		t.Fatalf("ID token claims %v", claims)
	}
	if u.Email != "zoe@example.com" || (&hfixture{fixture: f.fixture}).storedTOTP(t, u.ID) != secret {
		t.Fatalf("the account: %+v, or its authenticator is not the one shown", u)
	}
	if ok, _ := login.DefaultArgon2id.Verify(u.PasswordHash, pw); !ok {
		t.Fatal("the account's password is not the one chosen")
	}
	expectTrail(t, f.s, mark,
		want{typ: "user.created", outcome: storage.Success, user: u.ID, client: "app", detail: map[string]any{"via": "signup", "totp": true}},
		want{typ: login.EventSucceeded, outcome: storage.Success, user: u.ID, client: "app"})
	if strings.Contains(mustJSON(trail(t, f.s, 0)), pw) {
		t.Fatal("the password is in the trail")
	}
	// The sign-up is spent: its step page knows it no more.
	if p := b.get(f.s.URL + "/login/signup/step?signupID=" + url.QueryEscape(formValue(t, secretPage, "signupID"))); p.status != http.StatusGone {
		t.Fatalf("the finished sign-up's page: %d", p.status)
	}
	// Zoe signs in again, in another browser, with the password and the app.
	f.s.clock.Advance(30 * time.Second)
	zoe := &user{User: u, password: pw, totpSecret: secret}
	f.signIn(t, newBrowser(t, f.s), f.rp.authorize(), zoe)
}

// formValue is a hidden input's value on p's first form.
func formValue(t *testing.T, p *page, name string) string {
	t.Helper()
	_, v := p.form(t)
	if v.Get(name) == "" {
		t.Fatalf("no %s on the page:\n%s", name, p.body)
	}
	return v.Get(name)
}

// testSignupEmailPolicy: a client whose enrolment policy is email makes
// the proven address the account's factor: the code completes the sign-up
// with no authenticator app, and later sign-ins ask for an emailed code.
func testSignupEmailPolicy(t *testing.T, f *sfixture) {
	b := newBrowser(t, f.s)
	form, az := f.signupForm(t, b, f.mailRP)
	step := f.startSignup(t, b, form, "yan", "yan@example.com", "yan's long passphrase")
	b.noFollow = true
	done := b.submit(step, map[string]string{"otp": f.signupCode(t, "yan@example.com")})
	b.noFollow = false
	claims := landed(t, f.mailRP, b.get(done.location(t).String()), az)
	if !slices.Equal(toStrings(claims["roles"]), []string{"reader"}) || strings.Join(toStrings(claims["amr"]), " ") != "pwd otp mfa" {
		t.Fatalf("claims %v", claims)
	}
	u, err := f.s.db.GetUserByUsername(t.Context(), "yan")
	if err != nil {
		t.Fatal(err)
	}
	if (&hfixture{fixture: f.fixture}).storedTOTP(t, u.ID) != "" {
		t.Fatal("the email policy gave the account an authenticator")
	}
	// The next sign-in: password, then a code to the proven address.
	c := newBrowser(t, f.s)
	az = f.mailRP.authorize()
	otp := c.submit(c.get(az.url), map[string]string{"username": "yan", "password": "yan's long passphrase"})
	if otp.url.Path != "/login/otp" || !strings.Contains(otp.body, "y•••@example.com") {
		t.Fatalf("yan's sign-in: %d at %s\n%s", otp.status, otp.url, otp.body)
	}
	c.noFollow = true
	p := c.submit(otp, map[string]string{"otp": codeIn(t, f.mail.last(t, "yan@example.com", "sign-in code"))})
	c.noFollow = false
	if landed(t, f.mailRP, c.get(p.location(t).String()), az)["uid"] != u.ID {
		t.Fatal("yan's second sign-in is not yan's")
	}
}

// testSignupWrongCodes: wrong codes are bounded per sign-up, also when
// sent all at once: the right code after the last try works no more, and
// no account is made. A second sign-up, with its right code, works.
func testSignupWrongCodes(t *testing.T, f *sfixture) {
	b := newBrowser(t, f.s)
	form, _ := f.signupForm(t, b, f.rp)
	step := f.startSignup(t, b, form, "xavi", "xavi@example.com", "xavi's long passphrase")
	code := f.signupCode(t, "xavi@example.com")
	statuses := make([]int, 12)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() {
			p, err := b.b.Submit(step.Page, map[string]string{"otp": wrongCode(code)})
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = p.Status
		})
	}
	wg.Wait()
	wrong := 0
	for _, st := range statuses {
		switch st {
		case http.StatusForbidden:
			wrong++
		case http.StatusGone:
		default:
			t.Fatalf("a concurrent wrong code: %d (all: %v)", st, statuses)
		}
	}
	if wrong > 4 {
		t.Fatalf("%d wrong codes were answered as wrong (all: %v): more than 5 were evaluated", wrong, statuses)
	}
	// Each evaluated guess holds a slot, taken before it is checked.
	s, err := f.s.db.GetSignup(t.Context(), formValue(t, step, "signupID"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Failures > 5 || s.State != storage.SignupDead {
		t.Fatalf("after 12 concurrent wrong codes: %d evaluated, state %s, want at most 5 and dead", s.Failures, s.State)
	}
	if p := b.submit(step, map[string]string{"otp": code}); p.status != http.StatusGone || hasSecret(p) {
		t.Fatalf("the right code after the tries ran out: %d", p.status)
	}
	f.noUser(t, "after the tries ran out", "xavi", "xavi@example.com")

	// Positive control: a new sign-up with its own code gets on.
	form, _ = f.signupForm(t, b, f.rp)
	step = f.startSignup(t, b, form, "xavi", "xavi@example.com", "xavi's long passphrase")
	if p := b.submit(step, map[string]string{"otp": f.signupCode(t, "xavi@example.com")}); !hasSecret(p) {
		t.Fatalf("a new sign-up's right code: %d\n%s", p.status, p.body)
	}
}

// testSignupSwitchedOff: a client without sign-up shows no link, and its
// requests get 404 on every sign-up route; "app" (the positive control)
// shows it.
func testSignupSwitchedOff(t *testing.T, f *sfixture) {
	b := newBrowser(t, f.s)
	az := f.closed.authorize()
	p := b.get(az.url)
	if p.status != http.StatusOK || strings.Contains(p.body, "Create an account") {
		t.Fatalf("the closed client's password page: %d\n%s", p.status, p.body)
	}
	arID := p.url.Query().Get("authRequestID")
	if g := b.get(f.s.URL + "/login/signup?authRequestID=" + url.QueryEscape(arID)); g.status != http.StatusNotFound {
		t.Fatalf("GET the form: %d", g.status)
	}
	post := b.post(f.s.URL+"/login/signup", url.Values{"authRequestID": {arID}, "username": {"una"}, "email": {"una@example.com"},
		"password": {"una's long passphrase"}, "confirm": {"una's long passphrase"}})
	if post.status != http.StatusNotFound || f.mail.count("una@example.com") != 0 {
		t.Fatalf("POST the form: %d", post.status)
	}
	f.noUser(t, "the closed client", "una", "una@example.com")
	f.signupForm(t, b, f.rp) // the link is there for "app"
}

// testSignupOtherBrowser: a sign-up belongs to the browser that started
// it: another, with its ID and even its code, is refused at every step.
func testSignupOtherBrowser(t *testing.T, f *sfixture) {
	b := newBrowser(t, f.s)
	form, _ := f.signupForm(t, b, f.rp)
	step := f.startSignup(t, b, form, "tess", "tess@example.com", "tess's long passphrase")
	id := formValue(t, step, "signupID")
	code := f.signupCode(t, "tess@example.com")
	c := newBrowser(t, f.s)
	c.get(f.s.URL + "/login") // c has a binding cookie of its own
	if p := c.get(f.s.URL + "/login/signup/step?signupID=" + url.QueryEscape(id)); p.status != http.StatusForbidden {
		t.Fatalf("another browser's step page: %d", p.status)
	}
	if p := c.post(f.s.URL+"/login/signup/code", url.Values{"signupID": {id}, "otp": {code}}); p.status != http.StatusForbidden || hasSecret(p) {
		t.Fatalf("another browser's code: %d", p.status)
	}
	if p := c.post(f.s.URL+"/login/signup/resend", url.Values{"signupID": {id}}); p.status != http.StatusForbidden {
		t.Fatalf("another browser's resend: %d", p.status)
	}
	secretPage := b.submit(step, map[string]string{"otp": code}) // the positive control: its own browser
	secret := secretOn(t, secretPage)
	totp, _ := login.TOTPCode(secret, f.s.clock.Now())
	if p := c.post(f.s.URL+"/login/signup/totp", url.Values{"signupID": {id}, "otp": {totp}}); p.status != http.StatusForbidden {
		t.Fatalf("another browser's authenticator code: %d", p.status)
	}
	f.noUser(t, "another browser", "tess", "tess@example.com")
	b.noFollow = true
	if p := b.submit(secretPage, map[string]string{"otp": totp}); p.location(t).Path != "/authorize/callback" {
		t.Fatalf("its own browser: %d", p.status)
	}
}

// testSignupExpires: a sign-up lives as long as its login: past it, the
// right code is refused and nothing is made.
func testSignupExpires(t *testing.T, f *sfixture) {
	b := newBrowser(t, f.s)
	form, _ := f.signupForm(t, b, f.rp)
	step := f.startSignup(t, b, form, "sid", "sid@example.com", "sid's long passphrase")
	code := f.signupCode(t, "sid@example.com")
	f.s.clock.Advance(11 * time.Minute)
	if p := b.submit(step, map[string]string{"otp": code}); p.status != http.StatusGone || hasSecret(p) {
		t.Fatalf("the code after the sign-up expired: %d\n%s", p.status, p.body)
	}
	f.noUser(t, "an expired sign-up", "sid", "sid@example.com")
	// Positive control: a fresh one, at the new time, works.
	form, _ = f.signupForm(t, b, f.rp)
	step = f.startSignup(t, b, form, "sid", "sid@example.com", "sid's long passphrase")
	if p := b.submit(step, map[string]string{"otp": f.signupCode(t, "sid@example.com")}); !hasSecret(p) {
		t.Fatalf("a fresh sign-up: %d", p.status)
	}
}
