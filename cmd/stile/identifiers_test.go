package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestSignInIdentifiers signs in with each kind of identifier an operator
// can choose (stile serve --sign-in-with): usernames (NFKC, any case),
// email addresses (any case), phone numbers (any spacing, to E.164), and
// usernames or email addresses together — through stile's pages, the JSON
// login API and the direct mode, on SQLite and PostgreSQL. An identifier
// that names nobody gets the wrong password's answer, and its spellings
// share one failure count.
func TestSignInIdentifiers(t *testing.T) {
	scenarios := []struct {
		name, with string
		fn         func(*testing.T, *hfixture)
	}{
		{"Username", "username", testIdentUsername},
		{"Email", "email", testIdentEmail},
		{"Phone", "phone", testIdentPhone},
		{"UsernameOrEmail", "username,email", testIdentUsernameOrEmail},
		{"UnknownLooksLikeWrongPassword", "email", testIdentUnknown},
		{"SpellingsShareACount", "email", testIdentSharedCount},
		{"DuplicatePhoneRefused", "phone", testIdentDuplicatePhone},
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { sc.fn(t, newIdentFixture(t, d.URL(t), sc.with)) })
			}
		})
	}
}

// newIdentFixture is hfixture's server and accounts, signing in with the
// identifiers with (a --sign-in-with value).
func newIdentFixture(t *testing.T, dbURL, with string) *hfixture {
	t.Helper()
	w, err := login.ParseSignInWith(with)
	if err != nil {
		t.Fatal(err)
	}
	mb, gw := newMailbox(t), newSMSGateway(t)
	s := startServer(t, dbURL, delivery(t, mb, gw), func(c *appConfig) { c.SignInWith = w })
	return seedHeadless(t, s, mb, gw)
}

// pagesSignIn signs u in on stile's pages typing identifier, with u's TOTP
// code, and checks the ID token (go-oidc) is u's.
func (h *hfixture) pagesSignIn(t *testing.T, identifier string, u *user) {
	t.Helper()
	b := newBrowser(t, h.s)
	az := h.rp.authorize()
	p := b.submit(h.passwordPage(t, b, az), map[string]string{"username": identifier, "password": u.password})
	if p.status != http.StatusOK || p.url.Path != "/login/otp" {
		t.Fatalf("sign in as %q: landed on %s with status %d:\n%s", identifier, p.url, p.status, p.body)
	}
	signedInAs(t, h.rp, az, h.finish(t, b, p, h.s.code(t, u)), u, "pwd otp mfa")
}

// refused checks that identifier with u's password is refused as a wrong
// password is.
func (h *hfixture) refused(t *testing.T, identifier string, u *user) {
	t.Helper()
	b := newBrowser(t, h.s)
	p := b.submit(h.passwordPage(t, b, h.rp.authorize()), map[string]string{"username": identifier, "password": u.password})
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "or password is incorrect") {
		t.Fatalf("%q with the right password: status %d, want 401 invalid credentials:\n%s", identifier, p.status, p.body)
	}
}

// identifierInput checks the sign-in page's identifier field.
func identifierInput(t *testing.T, p *page, label, typ string) {
	t.Helper()
	if !strings.Contains(p.body, `<label for="username">`+label+`</label>`) ||
		!strings.Contains(p.body, `name="username" type="`+typ+`"`) || !strings.Contains(p.body, `autocomplete="username"`) {
		t.Fatalf("the sign-in page's identifier: want label %q, type %q, autocomplete username:\n%s", label, typ, p.body)
	}
}

func testIdentUsername(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	identifierInput(t, h.passwordPage(t, b, h.rp.authorize()), "Username", "text")
	// Fullwidth letters (NFKC) and any case name the same account.
	for _, id := range []string{"alice", "ALICE", "\uff41\uff4c\uff49\uff43\uff45", " Alice "} {
		h.pagesSignIn(t, id, h.alice)
		h.s.clock.Advance(31e9) // the next TOTP step: each is accepted once
	}
	// An email address is no username here.
	h.refused(t, "alice@example.com", h.alice)
}

func testIdentEmail(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	p := h.passwordPage(t, b, h.rp.authorize())
	identifierInput(t, p, "Email address", "email")
	if wrong := b.submit(p, map[string]string{"username": "alice@example.com", "password": "nope"}); !strings.Contains(wrong.body,
		"The email address or password is incorrect.") {
		t.Fatalf("a wrong password: the error does not name the deployment's identifier:\n%s", wrong.body)
	}
	h.pagesSignIn(t, "alice@example.com", h.alice)
	h.s.clock.Advance(31e9)
	h.pagesSignIn(t, "  Alice@EXAMPLE.com", h.alice)
	// A username is no email address here.
	h.refused(t, "alice", h.alice)

	// The JSON API: its field is still "username", carrying the address.
	b = newBrowser(t, h.s)
	arID, _ := h.handoff(t, b)
	r := h.call(t, "/login/api/authenticate", customOrigin, h.authBody(arID, "EMMA@example.com", h.emma.password))
	expect(t, "JSON API with an email address", r, http.StatusOK, "")
	if r.str("authType") != login.MethodEmail {
		t.Fatalf("JSON API: %v", r.body)
	}
	arID, _ = h.handoff(t, newBrowser(t, h.s))
	expect(t, "JSON API with a username", h.call(t, "/login/api/authenticate", customOrigin, h.authBody(arID, "emma", h.emma.password)),
		http.StatusUnauthorized, string(login.CodeInvalidCredentials))

	// The direct mode: the answer names the account's username, which the
	// second step takes.
	c := h.dmAdd(t, "cms")
	r = h.dmCall(t, "authenticate", map[string]string{"username": "Emma@Example.com", "password": h.emma.password, "apiKey": c.apiKey})
	expect(t, "direct mode with an email address", r, http.StatusOK, "")
	if r.str("username") != "emma" || r.str("authType") != login.MethodEmail {
		t.Fatalf("direct mode: %v", r.body)
	}
	code := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	h.dmTokens(t, c, h.dmLogin(t, c.apiKey, r.str("username"), r.str("transactionID"), login.MethodEmail, code), h.emma, "pwd otp mfa")
	expect(t, "direct mode with a username", h.dmCall(t, "authenticate", map[string]string{"username": "emma",
		"password": h.emma.password, "apiKey": c.apiKey}), http.StatusUnauthorized, string(login.CodeInvalidCredentials))
}

func testIdentPhone(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	identifierInput(t, h.passwordPage(t, b, h.rp.authorize()), "Phone number", "tel")
	// alice gets a number; any spacing of it is the one number.
	if _, err := h.s.db.UpdateUser(t.Context(), h.alice.ID, func(u *storage.User) error { u.Phone = "+1 (555) 555-0100"; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"+15555550100", "+1 555 555 0100", "+1-555-555-0100", "+1.555.555.0100"} {
		h.pagesSignIn(t, id, h.alice)
		h.s.clock.Advance(31e9)
	}
	h.refused(t, "alice", h.alice)
	h.refused(t, "alice@example.com", h.alice)
	h.refused(t, "15555550100", h.alice) // no country code: not a number E.164 reads

	// The JSON API and the direct mode take it too.
	b = newBrowser(t, h.s)
	arID, _ := h.handoff(t, b)
	r := h.call(t, "/login/api/authenticate", customOrigin, h.authBody(arID, "+44 7700 900-123", h.sam.password))
	expect(t, "JSON API with a phone number", r, http.StatusOK, "")
	if r.str("authType") != login.MethodSMS {
		t.Fatalf("JSON API: %v", r.body)
	}
	c := h.dmAdd(t, "cms")
	r = h.dmCall(t, "authenticate", map[string]string{"username": "+447700900123", "password": h.sam.password, "apiKey": c.apiKey})
	expect(t, "direct mode with a phone number", r, http.StatusOK, "")
	if r.str("username") != "sam" {
		t.Fatalf("direct mode: %v", r.body)
	}

	// A number nobody has is counted in E.164: its spellings share a count.
	b = newBrowser(t, h.s)
	form := h.passwordPage(t, b, h.rp.authorize())
	for _, id := range []string{"+44 20 7946 0999", "+442079460999", "+44-20-7946-0999", "+44 (20) 7946 0999", "+44.20.7946.0999"} {
		if p := b.submit(form, map[string]string{"username": id, "password": "guess"}); p.status != http.StatusUnauthorized {
			t.Fatalf("guess %q: status %d, want 401", id, p.status)
		}
	}
	if p := b.submit(form, map[string]string{"username": "+4420 7946 0999", "password": "guess"}); p.status != http.StatusTooManyRequests {
		t.Fatalf("a sixth spelling of the same number: status %d, want 429", p.status)
	}
	if p := b.submit(form, map[string]string{"username": "+44 20 7946 0998", "password": "guess"}); p.status != http.StatusUnauthorized {
		t.Fatalf("another number: status %d, want 401", p.status)
	}
}

func testIdentUsernameOrEmail(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	identifierInput(t, h.passwordPage(t, b, h.rp.authorize()), "Username or email address", "text")
	h.pagesSignIn(t, "Alice", h.alice)
	h.s.clock.Advance(31e9)
	h.pagesSignIn(t, "ALICE@example.com", h.alice)
	h.s.clock.Advance(31e9)
	// A username that is an address, on an account without that email,
	// still signs in with it: the email lookup finds nobody, the username
	// lookup the account.
	old := h.s.addUser(t, "old@legacy.example", true)
	if _, err := h.s.db.UpdateUser(t.Context(), old.ID, func(u *storage.User) error { u.Email = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	h.pagesSignIn(t, "Old@Legacy.example", old)
	// An email address wins over another account's username that spells it.
	if _, err := h.s.db.UpdateUser(t.Context(), h.emma.ID, func(u *storage.User) error { u.Email = "old@legacy.example"; return nil }); err != nil {
		t.Fatal(err)
	}
	h.refused(t, "old@legacy.example", old) // now emma's address: old's password is not hers
	// Phone numbers are not on in this deployment.
	h.refused(t, "+447700900123", h.sam)
}

func testIdentUnknown(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	form := h.passwordPage(t, b, h.rp.authorize())
	attempt := func(id, password string) (*page, int64) {
		before := h.s.hasher.verifies.Load()
		p := b.submit(form, map[string]string{"username": id, "password": password})
		return p, h.s.hasher.verifies.Load() - before
	}
	wrong, wrongHashes := attempt("alice@example.com", "not the password")
	unknown, unknownHashes := attempt("mallory@example.com", "not the password")
	if wrong.status != http.StatusUnauthorized || unknown.status != wrong.status {
		t.Fatalf("status: wrong password %d, unknown address %d; want both 401", wrong.status, unknown.status)
	}
	if strings.Replace(unknown.body, "mallory@example.com", "alice@example.com", 1) != wrong.body {
		t.Fatalf("bodies differ:\nwrong password:\n%s\nunknown address:\n%s", wrong.body, unknown.body)
	}
	if wrongHashes != 1 || unknownHashes != 1 {
		t.Fatalf("argon2id computations: wrong password %d, unknown address %d; want 1 each", wrongHashes, unknownHashes)
	}
	// The JSON API answers both alike too.
	arID, _ := h.handoff(t, newBrowser(t, h.s))
	w := h.call(t, "/login/api/authenticate", customOrigin, h.authBody(arID, "emma@example.com", "not the password"))
	u := h.call(t, "/login/api/authenticate", customOrigin, h.authBody(arID, "nobody@example.com", "not the password"))
	if w.status != http.StatusUnauthorized || u.status != w.status || w.str("message") != u.str("message") || w.str("error") != u.str("error") {
		t.Fatalf("JSON API: wrong password %d %v, unknown %d %v", w.status, w.body, u.status, u.body)
	}
	// Positive control: the right password moves on.
	if p, _ := attempt("alice@example.com", h.alice.password); p.url.Path != "/login/otp" {
		t.Fatalf("the right password: %s %d", p.url, p.status)
	}
}

// testIdentSharedCount: the failures of an address nobody has are counted
// by its normalised form, so changing its case does not buy more guesses;
// the lock is the pair's (this address, that identifier), as for a known
// account.
func testIdentSharedCount(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	form := h.passwordPage(t, b, h.rp.authorize())
	spellings := []string{"ghost@example.com", "GHOST@example.com", "Ghost@Example.com", " ghost@EXAMPLE.COM", "gHoSt@example.com"}
	for _, id := range spellings {
		if p := b.submit(form, map[string]string{"username": id, "password": "guess"}); p.status != http.StatusUnauthorized {
			t.Fatalf("guess %q: status %d, want 401", id, p.status)
		}
	}
	if p := b.submit(form, map[string]string{"username": "GHOST@EXAMPLE.COM", "password": "guess"}); p.status != http.StatusTooManyRequests {
		t.Fatalf("a sixth spelling of the same address: status %d, want 429 (one count for all spellings)", p.status)
	}
	// Positive control: another unknown address from the same browser is
	// counted on its own.
	if p := b.submit(form, map[string]string{"username": "other@example.com", "password": "guess"}); p.status != http.StatusUnauthorized {
		t.Fatalf("another address: status %d, want 401", p.status)
	}
}

// testIdentDuplicatePhone: a number is one account's, however it is
// written, on every way an operator writes users.
func testIdentDuplicatePhone(t *testing.T, h *hfixture) {
	// sam has +44 7700 900123. The CLI refuses it for another account.
	var errOut strings.Builder
	args := []string{"user", "update", "nora", "--phone", "+447700900123", "--database", h.s.dbURL, "--secret-file", h.s.keyFile}
	if err := run(t.Context(), args, func(string) string { return "" }, strings.NewReader(""), &strings.Builder{}, &errOut); err == nil ||
		!strings.Contains(err.Error()+errOut.String(), "phone") {
		t.Fatalf("user update --phone with sam's number: err %v, stderr %q; want a refusal about the phone", err, errOut.String())
	}
	// The account service refuses it on create, for every door.
	err := h.s.db.CreateUser(t.Context(), &storage.User{Username: "samuel", Phone: "+44 (7700) 900-123"})
	if storage.ConflictField(err) != "phone" {
		t.Fatalf("create with sam's number: %v", err)
	}
	// Positive control: another number is fine, and signs in.
	h.s.stile(t, "user", "update", "nora", "--phone", "+44 7700 900124")
	b := newBrowser(t, h.s)
	p := b.submit(h.passwordPage(t, b, h.rp.authorize()), map[string]string{"username": "+44 7700 900 124", "password": h.nora.password})
	if p.status != http.StatusForbidden || strings.Contains(p.body, "incorrect") { // her password passed; she has no second factor
		t.Fatalf("nora by her new number: status %d:\n%s", p.status, p.body)
	}
}
