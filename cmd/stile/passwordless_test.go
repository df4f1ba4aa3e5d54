package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestPasswordless signs in with a code alone — emailed or texted — for a
// client with the passwordless switch, on stile's pages with a real SMTP
// server and SMS webhook, and through the JSON API, on SQLite and
// PostgreSQL. The ID token (go-oidc) says one factor: amr ["otp"] without
// mfa, acr single-factor. An identifier nobody has gets the same pages and
// no message; wrong codes and sends are bounded; a client without the
// switch refuses it; and the single-factor session answers no other
// client silently.
func TestPasswordless(t *testing.T) {
	runIdent(t, "username,email,phone", []hscenario{
		{"PagesEmail", testPasswordlessEmail},
		{"PagesSMS", testPasswordlessSMS},
		{"UnknownIdentifierIsSilent", testPasswordlessUnknown},
		{"WrongCodesBounded", testPasswordlessTries},
		{"SendLimits", testPasswordlessSendLimits},
		{"ClientWithoutTheSwitch", testPasswordlessOff},
		{"SessionNotReusedByOtherClients", testPasswordlessSSO},
		{"JSONAPI", testPasswordlessAPI},
	})
}

// runIdent runs each scenario on its own server signing in with the
// identifiers with, on SQLite and on PostgreSQL.
func runIdent(t *testing.T, with string, scenarios []hscenario) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { sc.fn(t, newIdentFixture(t, d.URL(t), with)) })
			}
		})
	}
}

// plClient registers "pl", a first-party client on stile's pages with
// passwordless sign-in on.
func (h *hfixture) plClient(t *testing.T) *relyingParty {
	t.Helper()
	secret := h.s.addClient(t, &storage.Client{ID: "pl", Name: "Passwordless App", Type: storage.ClientWeb, FirstParty: true,
		RedirectURIs: storage.Strings{appRedirect}, RequirePKCE: true, Passwordless: true})
	return newRP(t, h.s, "pl", secret, appRedirect)
}

// codeForm opens an authorization of rp in b and follows the sign-in
// page's "Sign in with a code instead" to the identifier form.
func (h *hfixture) codeForm(t *testing.T, b *browser, rp *relyingParty) (*page, *authorization) {
	t.Helper()
	az := rp.authorize()
	p := h.passwordPage(t, b, az)
	form := b.get(p.url.ResolveReference(p.link(t, "Sign in with a code instead")).String())
	if form.status != http.StatusOK || form.url.Path != "/login/code" || !hasForm(form, "/login/code") {
		t.Fatalf("the code form: %s status %d:\n%s", form.url, form.status, form.body)
	}
	return form, az
}

// startCode submits identifier on the code form and lands on the code page.
func startCode(t *testing.T, b *browser, form *page, identifier string) *page {
	t.Helper()
	p := b.submitForm(form, "/login/code", map[string]string{"username": identifier})
	if p.status != http.StatusOK || p.url.Path != "/login/otp" || !strings.Contains(p.body, "If an account matches, we sent it a 6-digit code") {
		t.Fatalf("start with %q: %s status %d:\n%s", identifier, p.url, p.status, p.body)
	}
	return p
}

// oneFactor exchanges the code the browser was sent back with and checks
// the ID token: u's, amr ["otp"] alone, acr single-factor.
func oneFactor(t *testing.T, rp *relyingParty, az *authorization, loc *url.URL, u *user) {
	t.Helper()
	tok, err := rp.exchange(loc.Query().Get("code"), az.verifier)
	if err != nil {
		t.Fatalf("exchange: %v (redirected to %s)", err, loc)
	}
	claims := rp.idClaims(tok, az.nonce)
	if claims["sub"] != u.ID || strings.Join(toStrings(claims["amr"]), " ") != "otp" || claims["acr"] != op.ACRSingleFactor {
		t.Fatalf("ID token sub %v amr %v acr %v; want %s, [otp], %s", claims["sub"], claims["amr"], claims["acr"], u.ID, op.ACRSingleFactor)
	}
}

// txIDs matches the transaction IDs in a page, to compare two pages.
var txIDs = regexp.MustCompile(`transactionID=[A-Za-z0-9_-]+|name="transactionID" value="[A-Za-z0-9_-]+"`)

func (g *smsGateway) total() int { g.mu.Lock(); defer g.mu.Unlock(); return len(g.got) }

func testPasswordlessEmail(t *testing.T, h *hfixture) {
	rp := h.plClient(t)
	b := newBrowser(t, h.s)
	form, az := h.codeForm(t, b, rp)
	p := startCode(t, b, form, "Emma")
	if !hasForm(p, "/login/otp/resend") || strings.Contains(p.body, "recovery code") || strings.Contains(p.body, "example.com") {
		t.Fatalf("the code page: want a resend button, no recovery-code hint and no address:\n%s", p.body)
	}
	h.s.settle()
	msg := h.mail.last(t, "emma@example.com", "sign-in code")
	if strings.Contains(msg, "knows your password") {
		t.Fatalf("a passwordless code's mail speaks of a password:\n%s", msg)
	}
	code := codeIn(t, msg)
	wrong := b.submit(p, map[string]string{"otp": wrongCode(code)})
	if wrong.status != http.StatusForbidden || !strings.Contains(wrong.body, "4 tries left") {
		t.Fatalf("a wrong code: status %d:\n%s", wrong.status, wrong.body)
	}
	oneFactor(t, rp, az, h.finish(t, b, wrong, code), h.emma)
	if again := b.submit(wrong, map[string]string{"otp": code}); again.status != http.StatusGone {
		t.Fatalf("the used code again: status %d, want 410", again.status)
	}
	// Positive control: a sign-in with a password and a second factor says mfa.
	b = newBrowser(t, h.s)
	az = h.rp.authorize()
	loc := h.finish(t, b, h.otpPage(t, b, az, h.alice), h.s.code(t, h.alice))
	tok, err := h.rp.exchange(loc.Query().Get("code"), az.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if c := h.rp.idClaims(tok, az.nonce); c["acr"] != op.ACRMultiFactor || strings.Join(toStrings(c["amr"]), " ") != "pwd otp mfa" {
		t.Fatalf("a two-factor sign-in: amr %v acr %v", c["amr"], c["acr"])
	}
}

func testPasswordlessSMS(t *testing.T, h *hfixture) {
	rp := h.plClient(t)
	b := newBrowser(t, h.s)
	form, az := h.codeForm(t, b, rp)
	p := startCode(t, b, form, "+44 7700 900-123")
	h.s.settle()
	msg, _ := h.sms.last(t, "+447700900123")
	if h.mail.count("sam@example.com") != 0 {
		t.Fatal("a phone number typed: the code went by email too")
	}
	oneFactor(t, rp, az, h.finish(t, b, p, codeIn(t, msg)), h.sam)
}

func testPasswordlessUnknown(t *testing.T, h *hfixture) {
	rp := h.plClient(t)
	disabled := h.userWith(t, "dora", func(u *storage.User) { u.Disabled = true })
	b := newBrowser(t, h.s)
	form, _ := h.codeForm(t, b, rp)
	known := startCode(t, b, form, "emma@example.com")
	h.s.settle()
	mails, texts := h.mail.total(), h.sms.total()
	for _, id := range []string{"nobody@example.com", "nobody", "+44 20 7946 0999", disabled.Email} {
		p := startCode(t, b, form, id)
		if txIDs.ReplaceAllString(p.body, "") != txIDs.ReplaceAllString(known.body, "") || p.status != known.status {
			t.Fatalf("%q: the code page differs from a known account's:\n%s\n---\n%s", id, p.body, known.body)
		}
		// A resend looks the same too.
		h.s.clock.Advance(31 * time.Second)
		r := b.submitForm(p, "/login/otp/resend", nil)
		k := b.submitForm(known, "/login/otp/resend", nil)
		if r.status != http.StatusOK || r.status != k.status || txIDs.ReplaceAllString(r.body, "") != txIDs.ReplaceAllString(k.body, "") {
			t.Fatalf("%q: resend %d differs from a known account's %d:\n%s\n---\n%s", id, r.status, k.status, r.body, k.body)
		}
		h.s.settle()
		mails++ // emma's resent code
	}
	if h.mail.total() != mails || h.sms.total() != texts {
		t.Fatalf("messages: %d mails and %d texts, want %d and %d: only emma's resends", h.mail.total(), h.sms.total(), mails, texts)
	}
	if h.mail.count(disabled.Email) != 0 {
		t.Fatal("a disabled account got a code")
	}
}

func testPasswordlessTries(t *testing.T, h *hfixture) {
	rp := h.plClient(t)
	for _, id := range []string{"emma", "nobody@example.com"} {
		b := newBrowser(t, h.s)
		form, _ := h.codeForm(t, b, rp)
		p := startCode(t, b, form, id)
		h.s.settle()
		for i := 1; i <= 5; i++ {
			want := http.StatusForbidden
			if i == 5 {
				want = http.StatusGone
			}
			if p = b.submit(p, map[string]string{"otp": "000000"}); p.status != want {
				t.Fatalf("%s: wrong code %d: status %d, want %d:\n%s", id, i, p.status, want, p.body)
			}
			if !hasForm(p, "/login/otp") && i < 5 {
				t.Fatalf("%s: wrong code %d ended the page:\n%s", id, i, p.body)
			}
		}
	}
	// Five wrong codes lock this address's guesses at emma for 30 s, as
	// five wrong passwords would; then a new start signs her in.
	h.s.clock.Advance(31 * time.Second)
	b := newBrowser(t, h.s)
	form, az := h.codeForm(t, b, rp)
	p := startCode(t, b, form, "emma")
	h.s.settle()
	oneFactor(t, rp, az, h.finish(t, b, p, codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))), h.emma)
}

func testPasswordlessSendLimits(t *testing.T, h *hfixture) {
	rp := h.plClient(t)
	b := newBrowser(t, h.s)
	form, _ := h.codeForm(t, b, rp)
	// Three codes a minute reach emma; the next starts look the same and
	// send nothing; the eleventh start from this address in the minute is
	// refused.
	for i := 1; i <= 10; i++ {
		startCode(t, b, form, "emma")
	}
	h.s.settle()
	if n := h.mail.count("emma@example.com"); n != 3 {
		t.Fatalf("%d codes reached emma in a minute, want 3 (Limits.SendsPerMinute)", n)
	}
	p := b.submitForm(form, "/login/code", map[string]string{"username": "emma"})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Fatalf("the 11th start in a minute: status %d, want 429 with Retry-After", p.status)
	}
	// A minute later both limits have room again.
	h.s.clock.Advance(61 * time.Second)
	startCode(t, b, form, "emma")
	h.s.settle()
	if n := h.mail.count("emma@example.com"); n != 4 {
		t.Fatalf("after a minute: %d codes, want 4", n)
	}
}

func testPasswordlessOff(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	az := h.rp.authorize() // "app": no switch
	p := h.passwordPage(t, b, az)
	if strings.Contains(p.body, "/login/code") {
		t.Fatalf("a client without the switch offers a code:\n%s", p.body)
	}
	arID := p.url.Query().Get("authRequestID")
	if r := b.get(h.s.URL + "/login/code?authRequestID=" + url.QueryEscape(arID)); r.status != http.StatusNotFound {
		t.Fatalf("GET /login/code for a client without the switch: %d, want 404", r.status)
	}
	r := b.post(h.s.URL+"/login/code", url.Values{"authRequestID": {arID}, "username": {"emma"}})
	if r.status != http.StatusNotFound {
		t.Fatalf("POST /login/code for a client without the switch: %d, want 404", r.status)
	}
	h.s.settle()
	if h.mail.count("emma@example.com") != 0 {
		t.Fatal("a refused start sent a code")
	}
	// Positive control: the operator turns it on, and the same request offers it.
	h.s.stile(t, "client", "update", "app", "--passwordless")
	if p := b.get(h.s.URL + "/login?authRequestID=" + url.QueryEscape(arID)); !strings.Contains(p.body, "Sign in with a code instead") {
		t.Fatalf("after client update --passwordless: no code offered:\n%s", p.body)
	}
}

func testPasswordlessSSO(t *testing.T, h *hfixture) {
	rp := h.plClient(t)
	b := newBrowser(t, h.s)
	form, az := h.codeForm(t, b, rp)
	p := startCode(t, b, form, "emma")
	h.s.settle()
	oneFactor(t, rp, az, h.finish(t, b, p, codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))), h.emma)
	// Another client's request asks for a full sign-in...
	if p := b.get(h.rp.authorize().url); p.status != http.StatusOK || p.url.Path != "/login" {
		t.Fatalf("app after a passwordless session: %s status %d, want the sign-in page", p.url, p.status)
	}
	// ...and with prompt=none, gets login_required.
	if loc := b.get(h.rp.authorize("prompt", "none").url).location(t); loc.Query().Get("error") != "login_required" {
		t.Fatalf("app with prompt=none after a passwordless session: %s, want login_required", loc)
	}
	// The passwordless client's own request asking for two factors
	// (acr_values) gets a full sign-in too, without the code offered...
	mfa := b.get(rp.authorize("acr_values", op.ACRMultiFactor).url)
	if mfa.status != http.StatusOK || mfa.url.Path != "/login" || strings.Contains(mfa.body, "/login/code") {
		t.Fatalf("pl with acr_values mfa after a passwordless session: %s status %d:\n%s", mfa.url, mfa.status, mfa.body)
	}
	r := b.post(h.s.URL+"/login/code", url.Values{"authRequestID": {mfa.url.Query().Get("authRequestID")}, "username": {"emma"}})
	if r.status != http.StatusNotFound {
		t.Fatalf("a code start for a request asking for mfa: %d, want 404", r.status)
	}
	// ...and, signed in with the password and TOTP, gets acr mfa.
	alice := newBrowser(t, h.s)
	az = rp.authorize("acr_values", op.ACRMultiFactor)
	loc := h.finish(t, alice, h.otpPage(t, alice, az, h.alice), h.s.code(t, h.alice))
	tok, err := rp.exchange(loc.Query().Get("code"), az.verifier)
	if err != nil || rp.idClaims(tok, az.nonce)["acr"] != op.ACRMultiFactor {
		t.Fatalf("a two-factor sign-in asked for mfa: %v", err)
	}
	// Positive control: the passwordless client's next request is silent.
	az = rp.authorize()
	loc = b.get(az.url).location(t)
	oneFactor(t, rp, az, loc, h.emma)
	// And a request that accepts either (acr_values "mfa sfa") too.
	az = rp.authorize("acr_values", op.ACRMultiFactor+" "+op.ACRSingleFactor)
	oneFactor(t, rp, az, b.get(az.url).location(t), h.emma)
}

func testPasswordlessAPI(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	arID, _ := h.handoff(t, b)
	body := map[string]string{"authRequestID": arID, "loginToken": h.loginToken(arID), "username": "emma"}
	expect(t, "JSON API start for a client without the switch", h.call(t, "/login/api/passwordless", customOrigin, body),
		http.StatusNotFound, string(login.CodeNotEnabled))
	h.s.stile(t, "client", "update", "custom", "--passwordless")
	b = newBrowser(t, h.s)
	arID, az := h.handoff(t, b)
	body = map[string]string{"authRequestID": arID, "loginToken": h.loginToken(arID), "username": "emma"}
	expect(t, "a start with a wrong loginToken", h.call(t, "/login/api/passwordless", customOrigin,
		map[string]string{"authRequestID": arID, "loginToken": "x" + h.loginToken(arID), "username": "emma"}),
		http.StatusForbidden, string(login.CodeWrongBrowser))
	r := h.call(t, "/login/api/passwordless", customOrigin, body)
	expect(t, "JSON API start", r, http.StatusOK, "")
	u := h.call(t, "/login/api/passwordless", customOrigin, map[string]string{"authRequestID": arID, "loginToken": h.loginToken(arID),
		"username": "nobody"})
	expect(t, "JSON API start, unknown", u, http.StatusOK, "")
	if r.str("authType") != login.MethodEmail || u.str("authType") != r.str("authType") || u.str("message") != r.str("message") ||
		u.str("transactionID") == "" {
		t.Fatalf("known %v, unknown %v: want the same answer", r.body, u.body)
	}
	h.s.settle()
	// Twelve wrong codes at once on the unknown identifier's transaction:
	// no more than its five tries are evaluated.
	var wg sync.WaitGroup
	statuses := make(chan int, 12)
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": u.str("transactionID"), "otp": "000000"}).status
		}()
	}
	wg.Wait()
	close(statuses)
	wrong := 0
	for st := range statuses {
		switch st {
		case http.StatusForbidden:
			wrong++
		case http.StatusGone, http.StatusTooManyRequests:
		default:
			t.Fatalf("a concurrent wrong code on the unknown transaction: status %d", st)
		}
	}
	if wrong > 4 {
		t.Fatalf("%d wrong codes answered with tries left, want at most 4 (five tries, the fifth ends it)", wrong)
	}
	code := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	v := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": code})
	claims := h.custom.idClaims(h.finishAPI(t, b, az, v), az.nonce)
	if claims["sub"] != h.emma.ID || strings.Join(toStrings(claims["amr"]), " ") != "otp" || claims["acr"] != op.ACRSingleFactor {
		t.Fatalf("JSON API passwordless: claims %v", claims)
	}
}
