package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// acctFixture is a server with a real SMTP mailbox and alice (with an
// authenticator app) signed in in a browser.
type acctFixture struct {
	*fixture
	mb *mailbox
	b  *browser
}

func newAcctFixture(t *testing.T, dbURL string) *acctFixture {
	mb, gw := newMailbox(t), newSMSGateway(t)
	f := &acctFixture{fixture: newFixture(t, dbURL, delivery(t, mb, gw)), mb: mb}
	f.b = f.signedIn(t, f.alice)
	return f
}

// signedIn is a new browser with a session of u.
func (f *acctFixture) signedIn(t *testing.T, u *user) *browser {
	t.Helper()
	f.s.clock.Advance(30 * time.Second) // a TOTP step nobody used
	b := newBrowser(t, f.s)
	f.signIn(t, b, f.rp.authorize(), u)
	return b
}

// totp is u's code in the next TOTP step (each step is accepted once).
func (f *acctFixture) totp(t *testing.T, u *user) string {
	t.Helper()
	f.s.clock.Advance(30 * time.Second)
	return f.s.code(t, u)
}

// post submits an account form as the page would, same-origin.
func (f *acctFixture) post(b *browser, path string, form url.Values) *page {
	return b.post(f.s.URL+path, form, "Origin", f.s.URL, "Sec-Fetch-Site", "same-origin")
}

func (f *acctFixture) account(t *testing.T, b *browser) *page {
	t.Helper()
	p := b.get(f.s.URL + "/account")
	if p.status != http.StatusOK {
		t.Fatalf("account page: %d\n%s", p.status, p.body)
	}
	return p
}

// formTo returns the page's form that posts to path.
func (p *page) formTo(t *testing.T, path string) (*url.URL, url.Values) {
	t.Helper()
	for _, f := range p.Forms() {
		if f.Action.Path == path {
			return f.Action, f.Values
		}
	}
	t.Fatalf("no form to %s on %s:\n%s", path, p.url, p.body)
	return nil, nil
}

func wantPage(t *testing.T, p *page, status int, text string) {
	t.Helper()
	if p.status != status || !strings.Contains(p.body, text) {
		t.Fatalf("%s: status %d, want %d with %q:\n%s", p.url, p.status, status, text, p.body)
	}
}

// TestAccountPage drives the account page as a browser over real HTTP, on
// SQLite and PostgreSQL, with real SMTP: each change, its step-up refusals
// beside the success, and CSRF.
func TestAccountPage(t *testing.T) {
	scenarios := []struct {
		name string
		fn   func(*testing.T, *acctFixture)
	}{
		{"ShowsTheAccount", testAccountShows},
		{"CrossOriginRefused", testAccountCSRF},
		{"RecoveryCodes", testAccountRecoveryCodes},
		{"AuthenticatorRemoveAndAdd", testAccountTOTP},
		{"WrongCodesAreThrottled", testAccountThrottle},
		{"Password", testAccountPassword},
		{"Email", testAccountEmail},
		{"EmailTakenLeaksNothing", testAccountEmailTaken},
		{"Sessions", testAccountSessions},
		{"Preferred", testAccountPreferred},
		{"SentCodesAreLimited", testAccountSendLimit},
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { sc.fn(t, newAcctFixture(t, d.URL(t))) })
			}
		})
	}
}

func testAccountShows(t *testing.T, f *acctFixture) {
	p := f.account(t, f.b)
	for _, want := range []string{"alice", `id="totp-state">Authenticator app: <strong>set up`, "Recovery codes left: <strong>0",
		`id="current-session"`, "a•••@example.com"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(p.body, "<script") {
		t.Error("the page has a script")
	}
	// Signed out: a page that says how to sign in, not a dead end.
	out := newBrowser(t, f.s).get(f.s.URL + "/account")
	wantPage(t, out, http.StatusUnauthorized, "Sign in through an application")
	wantPage(t, f.post(newBrowser(t, f.s), "/account/recovery-codes", url.Values{"otp": {"123456"}}), http.StatusUnauthorized, "not signed in")
}

func testAccountCSRF(t *testing.T, f *acctFixture) {
	for _, h := range [][]string{{"Origin", "https://evil.example"}, {"Sec-Fetch-Site", "cross-site"}} {
		p := f.b.post(f.s.URL+"/account/recovery-codes", url.Values{"otp": {f.totp(t, f.alice)}}, h...)
		if p.status != http.StatusForbidden {
			t.Errorf("cross-origin (%s) POST: %d, want 403", h[0], p.status)
		}
		p = f.b.post(f.s.URL+"/account/sessions/end-others", url.Values{}, h...)
		if p.status != http.StatusForbidden {
			t.Errorf("cross-origin (%s) end-others: %d, want 403", h[0], p.status)
		}
	}
	if n, _ := f.s.db.RecoveryCodesLeft(context.Background(), f.alice.ID); n != 0 {
		t.Fatalf("a cross-origin POST made %d recovery codes", n)
	}
	// The same POST from the page itself works.
	p := f.post(f.b, "/account/recovery-codes", url.Values{"otp": {f.totp(t, f.alice)}})
	wantPage(t, p, http.StatusOK, "shown only now")
}

func testAccountRecoveryCodes(t *testing.T, f *acctFixture) {
	wantPage(t, f.post(f.b, "/account/recovery-codes", url.Values{}), http.StatusBadRequest, "Enter a current code")
	wantPage(t, f.post(f.b, "/account/recovery-codes", url.Values{"otp": {"000000"}}), http.StatusForbidden, "not right")
	used := f.totp(t, f.alice)
	p := f.post(f.b, "/account/recovery-codes", url.Values{"otp": {used}})
	wantPage(t, p, http.StatusOK, "shown only now")
	codes := recoveryCodesOn(t, p)
	// The step is spent: the same code again is refused.
	wantPage(t, f.post(f.b, "/account/recovery-codes", url.Values{"otp": {used}}), http.StatusForbidden, "not right")
	wantPage(t, f.account(t, f.b), http.StatusOK, "Recovery codes left: <strong>10")
	// A recovery code proves the next change, and is spent.
	p = f.post(f.b, "/account/recovery-codes", url.Values{"otp": {codes[0]}})
	wantPage(t, p, http.StatusOK, "shown only now")
	fresh := recoveryCodesOn(t, p)
	wantPage(t, f.post(f.b, "/account/recovery-codes", url.Values{"otp": {codes[1]}}), http.StatusForbidden, "not right") // voided
	wantPage(t, f.post(f.b, "/account/recovery-codes", url.Values{"otp": {fresh[0]}}), http.StatusOK, "shown only now")
	f.mb.last(t, "alice@example.com", "New recovery codes")
}

func recoveryCodesOn(t *testing.T, p *page) []string {
	t.Helper()
	var codes []string
	for _, part := range strings.Split(p.body, "<li><code>")[1:] {
		codes = append(codes, part[:strings.Index(part, "<")])
	}
	if len(codes) != 10 {
		t.Fatalf("%d codes on the page:\n%s", len(codes), p.body)
	}
	return codes
}

func testAccountTOTP(t *testing.T, f *acctFixture) {
	// Removing takes a code from the app (or a recovery code).
	wantPage(t, f.post(f.b, "/account/totp/remove", url.Values{"otp": {"123456"}}), http.StatusForbidden, "not right")
	p := f.post(f.b, "/account/totp/remove", url.Values{"otp": {f.totp(t, f.alice)}})
	wantPage(t, p, http.StatusOK, "Your authenticator app was removed.")
	wantPage(t, p, http.StatusOK, `id="totp-state">Authenticator app: none`)
	f.mb.last(t, "alice@example.com", "authenticator app was removed")

	// Adding one now takes a code sent to alice's address (her only factor).
	wantPage(t, f.post(f.b, "/account/totp", url.Values{"otp": {"123456"}}), http.StatusForbidden, "not right")
	wantPage(t, f.post(f.b, "/account/code", url.Values{"method": {"EMAIL"}}), http.StatusOK, "We sent a code to a•••@example.com")
	sent := codeIn(t, f.mb.last(t, "alice@example.com", "confirm a change"))
	p = f.post(f.b, "/account/totp", url.Values{"otp": {sent}})
	wantPage(t, p, http.StatusOK, "Scan this code")
	secret := between(p.body, `id="secret">`, "<")
	// A wrong first code leaves nothing set up; the app's code does.
	wantPage(t, f.post(f.b, "/account/totp/confirm", url.Values{"otp": {"000000"}}), http.StatusForbidden, "not right")
	f.s.clock.Advance(30 * time.Second)
	code, _ := login.TOTPCode(secret, f.s.clock.Now())
	p = f.post(f.b, "/account/totp/confirm", url.Values{"otp": {code}})
	wantPage(t, p, http.StatusOK, "Your authenticator app is set up.")
	// The sent code was spent; the new app's next code proves changes.
	wantPage(t, f.post(f.b, "/account/recovery-codes", url.Values{"otp": {sent}}), http.StatusForbidden, "not right")
	f.s.clock.Advance(30 * time.Second)
	code, _ = login.TOTPCode(secret, f.s.clock.Now())
	wantPage(t, f.post(f.b, "/account/recovery-codes", url.Values{"otp": {code}}), http.StatusOK, "shown only now")
	// alice's old app no longer works.
	wantPage(t, f.post(f.b, "/account/recovery-codes", url.Values{"otp": {f.totp(t, f.alice)}}), http.StatusForbidden, "not right")
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	return s[:strings.Index(s, end)]
}

// testAccountThrottle: wrong codes count like sign-in guesses; the lock
// refuses even the right code until it ends, then the right code works.
func testAccountThrottle(t *testing.T, f *acctFixture) {
	for i := 0; i < 5; i++ {
		wantPage(t, f.post(f.b, "/account/recovery-codes", url.Values{"otp": {"000000"}}), http.StatusForbidden, "not right")
	}
	// The next step's code (±1 step is accepted) without moving the clock.
	next, _ := login.TOTPCode(f.alice.totpSecret, f.s.clock.Now().Add(30*time.Second))
	p := f.post(f.b, "/account/recovery-codes", url.Values{"otp": {next}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Fatalf("after 5 wrong codes: %d (Retry-After %q), want 429", p.status, p.header.Get("Retry-After"))
	}
	f.s.clock.Advance(31 * time.Second)
	wantPage(t, f.post(f.b, "/account/recovery-codes", url.Values{"otp": {next}}), http.StatusOK, "shown only now")
}

func testAccountPassword(t *testing.T, f *acctFixture) {
	next := "a brand new passphrase"
	form := func(current, pw, otp string) url.Values {
		return url.Values{"current": {current}, "password": {pw}, "confirm": {pw}, "otp": {otp}}
	}
	wantPage(t, f.post(f.b, "/account/password", form(f.alice.password, "short", "123456")), http.StatusBadRequest, "Choose another password")
	wantPage(t, f.post(f.b, "/account/password", form("not my password", next, f.totp(t, f.alice))), http.StatusUnauthorized,
		"current password is not right")
	wantPage(t, f.post(f.b, "/account/password", form(f.alice.password, next, "")), http.StatusBadRequest, "Enter a current code")
	wantPage(t, f.post(f.b, "/account/password", form(f.alice.password, next, "000000")), http.StatusForbidden, "not right")
	other := f.signedIn(t, f.alice)
	p := f.post(f.b, "/account/password", form(f.alice.password, next, f.totp(t, f.alice)))
	wantPage(t, p, http.StatusOK, "Your password was changed")
	f.mb.last(t, "alice@example.com", "password of your account alice was changed")
	// Every session ended, this one too.
	for _, b := range []*browser{f.b, other} {
		if p := b.get(f.s.URL + "/account"); p.status != http.StatusUnauthorized {
			t.Errorf("a session survived the password change: %d", p.status)
		}
	}
	// The old password fails, the new one works.
	b := newBrowser(t, f.s)
	p = b.submit(f.passwordPage(t, b, f.rp.authorize()), map[string]string{"username": "alice", "password": f.alice.password})
	wantPage(t, p, http.StatusUnauthorized, "incorrect")
	f.alice.password = next
	f.signedIn(t, f.alice)

	// The trail: the refusals at each proof, then the change, by alice.
	evs, err := f.s.db.ListEvents(context.Background(), storage.EventFilter{UserID: f.alice.ID, Type: "user.password_set"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%s/%s/%v/%v", e.Outcome, e.Reason, e.Detail["step"], e.ActorUser == f.alice.ID))
	}
	want := []string{"failure/invalid_credentials/current_password/true", "failure/wrong_code/proof/true", "success//<nil>/true"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("password events %v, want %v", got, want)
	}
}

func testAccountEmail(t *testing.T, f *acctFixture) {
	// The change needs a fresh code first; nothing is sent without it.
	wantPage(t, f.post(f.b, "/account/email", url.Values{"email": {"alice@new.example"}, "otp": {"000000"}}), http.StatusForbidden, "not right")
	wantPage(t, f.post(f.b, "/account/email", url.Values{"email": {"not an address"}, "otp": {"000000"}}), http.StatusBadRequest, "email address")
	if n := f.mb.count("alice@new.example"); n != 0 {
		t.Fatalf("%d mails to the new address before any proof", n)
	}
	p := f.post(f.b, "/account/email", url.Values{"email": {"alice@new.example"}, "otp": {f.totp(t, f.alice)}})
	wantPage(t, p, http.StatusOK, "We sent a message to <strong>alice@new.example")
	code := codeIn(t, f.mb.last(t, "alice@new.example", "make this the email address"))
	wantPage(t, f.post(f.b, "/account/email/confirm", url.Values{"code": {"000000"}}), http.StatusForbidden, "not right")
	wantPage(t, f.account(t, f.b), http.StatusOK, `id="email">alice@example.com`) // not yet
	p = f.post(f.b, "/account/email/confirm", url.Values{"code": {code}})
	wantPage(t, p, http.StatusOK, "Your email address was changed.")
	wantPage(t, p, http.StatusOK, `id="email">alice@new.example`)
	f.mb.last(t, "alice@example.com", "The email address of your account alice was just changed")
	// The code works once.
	wantPage(t, f.post(f.b, "/account/email/confirm", url.Values{"code": {code}}), http.StatusForbidden, "not right")
	if u, _ := f.s.db.GetUser(context.Background(), f.alice.ID); u.Email != "alice@new.example" {
		t.Fatalf("stored email %q", u.Email)
	}
}

// testAccountEmailTaken: asking for another account's address answers
// exactly as for a free one; only the mailbox's owner learns it is taken,
// and no code can confirm it.
func testAccountEmailTaken(t *testing.T, f *acctFixture) {
	f.s.addUser(t, "bob", false)
	free := f.post(f.b, "/account/email", url.Values{"email": {"carol@example.com"}, "otp": {f.totp(t, f.alice)}})
	taken := f.post(f.b, "/account/email", url.Values{"email": {"bob@example.com"}, "otp": {f.totp(t, f.alice)}})
	if free.status != taken.status || strings.ReplaceAll(free.body, "carol", "bob") != taken.body {
		t.Fatalf("a taken address answers differently:\n%d %s\n%d %s", free.status, free.body, taken.status, taken.body)
	}
	notice := f.mb.last(t, "bob@example.com", "Someone asked to make this the email address")
	if sixDigits.MatchString(notice[strings.Index(notice, "Someone asked"):]) {
		t.Errorf("the notice to a taken address carries a code:\n%s", notice)
	}
	for _, c := range []string{"000000", "123456"} {
		wantPage(t, f.post(f.b, "/account/email/confirm", url.Values{"code": {c}}), http.StatusForbidden, "not right")
	}
	if u, _ := f.s.db.GetUser(context.Background(), f.alice.ID); u.Email != "alice@example.com" {
		t.Fatalf("alice's email became %q", u.Email)
	}
}

func testAccountSessions(t *testing.T, f *acctFixture) {
	other, third := f.signedIn(t, f.alice), f.signedIn(t, f.alice)
	bob := f.s.addUser(t, "bob", true)
	bobs := f.signedIn(t, bob)
	p := f.account(t, f.b)
	if n := strings.Count(p.body, `<tr class="session"`); n != 3 {
		t.Fatalf("%d sessions listed, want 3:\n%s", n, p.body)
	}
	// One session, by its ID; another user's ID is refused and lives on.
	thirdID := between(f.account(t, third).body, `id="current-session">`, `</form>`)
	thirdID = between(thirdID, `name="sessionID" value="`, `"`)
	bobID := between(f.account(t, bobs).body, `id="current-session">`, `</form>`)
	bobID = between(bobID, `name="sessionID" value="`, `"`)
	wantPage(t, f.post(f.b, "/account/sessions/end", url.Values{"sessionID": {bobID}}), http.StatusBadRequest, "not one of yours")
	f.account(t, bobs)
	wantPage(t, f.post(f.b, "/account/sessions/end", url.Values{"sessionID": {thirdID}}), http.StatusOK, "The session was signed out.")
	if p := third.get(f.s.URL + "/account"); p.status != http.StatusUnauthorized {
		t.Errorf("the ended session still works: %d", p.status)
	}
	f.account(t, other)
	// Every other session.
	p = f.post(f.b, "/account/sessions/end-others", url.Values{})
	wantPage(t, p, http.StatusOK, "Every other session was signed out.")
	if p := other.get(f.s.URL + "/account"); p.status != http.StatusUnauthorized {
		t.Errorf("the other session still works: %d", p.status)
	}
	if n := strings.Count(p.body, `<tr class="session"`); n != 1 {
		t.Errorf("%d sessions left, want this one", n)
	}
	f.account(t, f.b)
	f.account(t, bobs)
}

func testAccountPreferred(t *testing.T, f *acctFixture) {
	wantPage(t, f.post(f.b, "/account/preferred", url.Values{"method": {"SMS"}}), http.StatusBadRequest, "Choose one") // no phone
	wantPage(t, f.post(f.b, "/account/preferred", url.Values{"method": {"EMAIL"}}), http.StatusOK, "preferred second factor was changed")
	if u, _ := f.s.db.GetUser(context.Background(), f.alice.ID); u.Preferred != login.MethodEmail {
		t.Fatalf("preferred %q", u.Preferred)
	}
}

// testAccountSendLimit: a session cannot make stile mail the user (or a
// new address) without bound: the send limits of sign-in codes apply.
func testAccountSendLimit(t *testing.T, f *acctFixture) {
	for i := 0; i < 3; i++ {
		wantPage(t, f.post(f.b, "/account/code", url.Values{"method": {"EMAIL"}}), http.StatusOK, "We sent a code")
	}
	p := f.post(f.b, "/account/code", url.Values{"method": {"EMAIL"}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Fatalf("a fourth code in a minute: %d", p.status)
	}
	if n := strings.Count(strings.Join(f.mb.sent("alice@example.com"), "\n"), "Subject: Your code to confirm a change"); n != 3 {
		t.Fatalf("%d codes mailed, want 3", n)
	}
	// A method the user cannot receive is refused.
	wantPage(t, f.post(f.b, "/account/code", url.Values{"method": {"SMS"}}), http.StatusBadRequest, "cannot be sent")
	// The last code sent still works; the minute over, sending works again.
	code := codeIn(t, f.mb.last(t, "alice@example.com", "confirm a change"))
	wantPage(t, f.post(f.b, "/account/recovery-codes", url.Values{"otp": {code}}), http.StatusOK, "shown only now")
	f.s.clock.Advance(time.Minute)
	wantPage(t, f.post(f.b, "/account/code", url.Values{"method": {"EMAIL"}}), http.StatusOK, "We sent a code")
}
