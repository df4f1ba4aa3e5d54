package main

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestPageDetails checks the details a person notices on stile's own
// login pages, over real HTTP with a real SMTP server, on SQLite and
// PostgreSQL: the code field a phone opens a keypad for, the switch to a
// recovery code, "Send a new code" and its limits, the application's name
// on every page, the way back to the application from every dead end, and
// the logout confirmation's "Stay signed in".
func TestPageDetails(t *testing.T) {
	runHeadless(t, []hscenario{
		{"CodeField", testDetailsCodeField},
		{"RecoverySwitch", testDetailsRecoverySwitch},
		{"Resend", testDetailsResend},
		{"DisplayName", testDetailsDisplayName},
		{"CancelStopped", testDetailsCancelStopped},
		{"CancelFromCodePage", testDetailsCancelFromCodePage},
		{"NoWayBackWhenOver", testDetailsNoWayBackWhenOver},
		{"LogoutStaySignedIn", testDetailsLogoutStay},
		{"SignedOut", testDetailsSignedOut},
	})
}

// detailsClient registers a first-party client on stile's own pages
// (name "" for none) with an enrolment policy ("" for the default,
// refuse), and returns a relying party for it.
func (h *hfixture) detailsClient(t *testing.T, id, name, policy string) *relyingParty {
	t.Helper()
	secret := h.s.addClient(t, &storage.Client{ID: id, Name: name, Type: storage.ClientWeb, FirstParty: true,
		RedirectURIs: storage.Strings{appRedirect}, RequirePKCE: true, EnrollmentPolicy: policy})
	return newRP(t, h.s, id, secret, appRedirect)
}

// field returns the attributes of the page's element with this id.
func field(t *testing.T, p *page, id string) map[string]string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	var found map[string]string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && found == nil {
			attrs := map[string]string{}
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
			}
			if attrs["id"] == id {
				found = attrs
				return
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if found == nil {
		t.Fatalf("no element #%s on %s (status %d):\n%s", id, p.url, p.status, p.body)
	}
	return found
}

// wantAttrs checks an element's attributes: a value, or "-" for absent.
func wantAttrs(t *testing.T, what string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		if v == "-" && ok || v != "-" && g != v {
			t.Errorf("%s: %s=%q (present %v), want %q", what, k, g, ok, v)
		}
	}
}

var (
	numericField = map[string]string{"type": "text", "inputmode": "numeric", "autocomplete": "one-time-code",
		"pattern": "[0-9 ]*", "name": "otp"}
	recoveryField = map[string]string{"type": "text", "inputmode": "text", "autocomplete": "off", "autocapitalize": "none",
		"spellcheck": "false", "pattern": "-", "name": "otp"}
)

// follow opens a link of the page by its text.
func (b *browser) follow(p *page, text string) *page {
	b.t.Helper()
	return b.get(p.url.ResolveReference(p.link(b.t, text)).String())
}

// forApp reports whether the page names the application it signs in to.
func forApp(p *page, name string) bool {
	return strings.Contains(p.body, `<p class="for">to continue to <strong>`+html.EscapeString(name)+`</strong></p>`)
}

// testDetailsCodeField: the code field is a text field a phone opens its
// numeric keypad for and fills from an SMS or mail (one-time-code), and a
// code typed in two groups of three still signs in.
func testDetailsCodeField(t *testing.T, h *hfixture) {
	rp := h.detailsClient(t, "pages", "Pages App", "")
	b := newBrowser(t, h.s)
	az := rp.authorize()
	p := h.otpPage(t, b, az, h.alice)
	wantAttrs(t, "the TOTP code field", field(t, p, "otp"), numericField)
	code := h.s.code(t, h.alice)
	signedInAs(t, rp, az, h.finish(t, b, p, code[:3]+" "+code[3:]), h.alice, "pwd otp mfa")

	// The same field for an emailed code.
	p = h.otpPage(t, newBrowser(t, h.s), rp.authorize(), h.emma)
	wantAttrs(t, "the emailed code field", field(t, p, "otp"), numericField)

	// And on an enrolment link's confirmation, where "123 456" works too.
	pat, link := h.passwordless(t, "pat")
	b = newBrowser(t, h.s)
	secretPage := b.submit(b.get(link), map[string]string{"password": "a passphrase pat chose", "confirm": "a passphrase pat chose"})
	wantAttrs(t, "the enrolment code field", field(t, secretPage, "otp"), numericField)
	pat.totpSecret = secretOn(t, secretPage)
	code = h.s.code(t, pat)
	if done := b.submit(secretPage, map[string]string{"otp": code[:3] + " " + code[3:]}); done.status != http.StatusOK ||
		!strings.Contains(done.body, "You are set up") {
		t.Fatalf("a spaced first code on the enrolment link: status %d:\n%s", done.status, done.body)
	}
}

// testDetailsRecoverySwitch: "Use a recovery code" is a link (no script)
// to the same page with a plain text field; a wrong recovery code there is
// refused and the page stays a recovery form; a right one signs in. "Use
// your code instead" goes back.
func testDetailsRecoverySwitch(t *testing.T, h *hfixture) {
	codes := h.recoveryCodes(t, h.alice)
	rp := h.detailsClient(t, "pages", "Pages App", "")
	b := newBrowser(t, h.s)
	az := rp.authorize()
	p := h.otpPage(t, b, az, h.alice)

	rec := b.follow(p, "Use a recovery code")
	if rec.status != http.StatusOK || rec.url.Query().Get("recovery") != "1" || !strings.Contains(rec.body, "<h1>Enter a recovery code</h1>") {
		t.Fatalf("the recovery switch led to %s (status %d):\n%s", rec.url, rec.status, rec.body)
	}
	wantAttrs(t, "the recovery field", field(t, rec, "otp"), recoveryField)
	back := b.follow(rec, "Use your code instead")
	wantAttrs(t, "back to the code field", field(t, back, "otp"), numericField)
	if back.url.Query().Get("recovery") != "" {
		t.Fatalf("the way back kept the recovery switch: %s", back.url)
	}

	// A recovery-shaped code that is not one of alice's: refused, and the
	// form is still the recovery form.
	wrong := b.submit(rec, map[string]string{"otp": "zzzz-zzzz-zz"})
	if wrong.status != http.StatusForbidden || !strings.Contains(wrong.body, "not right") {
		t.Fatalf("a wrong recovery code: status %d:\n%s", wrong.status, wrong.body)
	}
	wantAttrs(t, "the recovery field after a wrong code", field(t, wrong, "otp"), recoveryField)
	signedInAs(t, rp, az, h.finish(t, b, wrong, codes[0]), h.alice, "pwd otp mfa")
	if left, err := h.s.db.RecoveryCodesLeft(t.Context(), h.alice.ID); err != nil || left != 9 {
		t.Fatalf("recovery codes left: %d, %v; want 9", left, err)
	}

	// On an emailed code's page the switch hides "Send a new code".
	p = h.otpPage(t, newBrowser(t, h.s), rp.authorize(), h.emma)
	if !hasForm(p, "/login/otp/resend") || hasForm(b.follow(p, "Use a recovery code"), "/login/otp/resend") {
		t.Fatal("the emailed code page: want the resend button, and none on its recovery form")
	}
}

// testDetailsResend: "Send a new code" is there for email and SMS (not for
// an authenticator app); asking too soon is refused with 429, Retry-After
// and how long to wait; another browser cannot make stile send; after the
// wait a second mail comes and the first code stops working.
func testDetailsResend(t *testing.T, h *hfixture) {
	rp := h.detailsClient(t, "pages", "Pages App", "")
	if p := h.otpPage(t, newBrowser(t, h.s), rp.authorize(), h.sam); !hasForm(p, "/login/otp/resend") {
		t.Fatalf("an SMS code page without a resend button:\n%s", p.body)
	}
	if p := h.otpPage(t, newBrowser(t, h.s), rp.authorize(), h.alice); hasForm(p, "/login/otp/resend") {
		t.Fatalf("an authenticator app's code page with a resend button:\n%s", p.body)
	}
	b := newBrowser(t, h.s)
	az := rp.authorize()
	p := h.otpPage(t, b, az, h.emma)
	first := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))

	early := b.submitForm(p, "/login/otp/resend", nil)
	ra, err := strconv.Atoi(early.header.Get("Retry-After"))
	if early.status != http.StatusTooManyRequests || err != nil || ra < 1 || ra > 30 ||
		!strings.Contains(early.body, "Try again in "+strconv.Itoa(ra)+" seconds.") {
		t.Fatalf("resend too soon: status %d, Retry-After %q:\n%s", early.status, early.header.Get("Retry-After"), early.body)
	}
	if n := h.mail.count("emma@example.com"); n != 1 {
		t.Fatalf("a refused resend sent mail: %d mails", n)
	}

	// After the wait, another browser (with a binding of its own) posting
	// emma's transaction is refused and nothing is sent.
	h.s.clock.Advance(31 * time.Second)
	other := newBrowser(t, h.s)
	h.passwordPage(t, other, rp.authorize())
	f := formTo(p, "/login/otp/resend")
	if r := other.post(h.s.URL+"/login/otp/resend", f.Values); r.status != http.StatusForbidden || h.mail.count("emma@example.com") != 1 {
		t.Fatalf("resend from another browser: status %d, %d mails; want 403 and 1", r.status, h.mail.count("emma@example.com"))
	}

	// The right browser gets a new code (asked again in the rare case it
	// equals the first); the first no longer works, the second does.
	second, page := first, p
	for mails := 2; second == first; mails++ {
		if mails > 4 {
			t.Fatal("three new codes all equal the first")
		}
		page = b.submitForm(page, "/login/otp/resend", nil)
		if page.status != http.StatusOK || !strings.Contains(page.body, "A new code is on its way") || h.mail.count("emma@example.com") != mails {
			t.Fatalf("resend: status %d, %d mails, want %d:\n%s", page.status, h.mail.count("emma@example.com"), mails, page.body)
		}
		second = codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
		h.s.clock.Advance(31 * time.Second)
	}
	if old := b.submit(page, map[string]string{"otp": first}); old.status != http.StatusForbidden {
		t.Fatalf("the replaced code: status %d, want 403", old.status)
	}
	signedInAs(t, rp, az, h.finish(t, b, page, second), h.emma, "pwd otp mfa")
}

// testDetailsDisplayName: every page of a sign-in names the application
// by its display name, never its client ID while it has a name; a client
// without a name is named by its ID; an enrolment link, which is for no
// application, names none.
func testDetailsDisplayName(t *testing.T, h *hfixture) {
	rp := h.detailsClient(t, "pages", "Pages App", storage.EnrollEmailThenTOTP)
	named := func(what string, p *page) {
		t.Helper()
		if !forApp(p, "Pages App") || strings.Contains(p.body, "<strong>pages</strong>") {
			t.Errorf("%s (%s, status %d) does not name Pages App:\n%s", what, p.url.Path, p.status, p.body)
		}
	}
	b := newBrowser(t, h.s)
	az := rp.authorize()
	pw := h.passwordPage(t, b, az)
	named("the password page", pw)
	named("a wrong password", b.submit(pw, map[string]string{"username": "nora", "password": "not nora's"}))
	p := h.otpPage(t, b, az, h.nora)
	named("the emailed code page", p)
	named("a wrong code", b.submit(p, map[string]string{"otp": wrongCode(codeIn(t, h.mail.last(t, "nora@example.com", "sign-in code")))}))
	setup := b.submit(p, map[string]string{"otp": codeIn(t, h.mail.last(t, "nora@example.com", "sign-in code"))})
	if !strings.Contains(setup.body, "Set up your authenticator") {
		t.Fatalf("after the emailed code:\n%s", setup.body)
	}
	named("the authenticator set-up", setup)

	// A third party's consent page.
	partner := h.s.addClient(t, &storage.Client{ID: "partner", Name: "Partner App", Type: storage.ClientWeb,
		RedirectURIs: storage.Strings{partnerRedirect}, RequirePKCE: true})
	prp := newRP(t, h.s, "partner", partner, partnerRedirect)
	h.nextStep()
	cb := newBrowser(t, h.s)
	consent := cb.submit(h.otpPage(t, cb, prp.authorize(), h.alice), map[string]string{"otp": h.s.code(t, h.alice)})
	if consent.url.Path != "/login/consent" || !forApp(consent, "Partner App") || strings.Contains(consent.body, "<strong>partner</strong>") {
		t.Fatalf("the consent page (%s) does not name Partner App:\n%s", consent.url, consent.body)
	}

	// "Sign-in stopped": a policy that refuses users without a second
	// factor, and a transaction killed by wrong codes.
	strict := h.detailsClient(t, "strict", "Strict App", "")
	sb := newBrowser(t, h.s)
	stopped := sb.submit(h.passwordPage(t, sb, strict.authorize()), map[string]string{"username": "sam", "password": "x"})
	if !forApp(stopped, "Strict App") {
		t.Errorf("a wrong password for Strict App does not name it:\n%s", stopped.body)
	}
	other := h.userWith(t, "olga", func(*storage.User) {})
	stopped = sb.submit(h.passwordPage(t, sb, strict.authorize()), map[string]string{"username": "olga", "password": other.password})
	if stopped.status != http.StatusForbidden || !strings.Contains(stopped.body, "Sign-in stopped") || !forApp(stopped, "Strict App") {
		t.Errorf("no second factor: status %d, want 403 naming Strict App:\n%s", stopped.status, stopped.body)
	}
	h.nextStep()
	named("the dead transaction's page", h.killed(t, newBrowser(t, h.s), rp.authorize()))

	// A client without a name is named by its ID.
	nameless := h.detailsClient(t, "nameless-client", "", "")
	if p := h.passwordPage(t, newBrowser(t, h.s), nameless.authorize()); !forApp(p, "nameless-client") {
		t.Errorf("a client without a name is not named by its ID:\n%s", p.body)
	}
	// An enrolment link is for no application.
	_, link := h.passwordless(t, "pat")
	if p := newBrowser(t, h.s).get(link); p.status != http.StatusOK || strings.Contains(p.body, `class="for"`) {
		t.Errorf("the enrolment link names an application (status %d):\n%s", p.status, p.body)
	}
}

// killed opens a TOTP sign-in for alice in b and kills it with five wrong
// codes; it returns the page the last one ends on.
func (h *hfixture) killed(t *testing.T, b *browser, az *authorization) *page {
	t.Helper()
	p := h.otpPage(t, b, az, h.alice)
	bad := wrongCode(h.s.code(t, h.alice))
	var dead *page
	for range 5 {
		dead = b.submit(p, map[string]string{"otp": bad})
	}
	if dead.status != http.StatusGone || !strings.Contains(dead.body, "Too many wrong codes") {
		t.Fatalf("five wrong codes: status %d, want 410:\n%s", dead.status, dead.body)
	}
	return dead
}

// backToApp checks where "Back to <app>" sent the browser: the client's
// redirect URI with access_denied, the request's state and stile's iss,
// and no code.
func (h *hfixture) backToApp(t *testing.T, loc *url.URL, az *authorization) {
	t.Helper()
	q := loc.Query()
	if loc.Scheme+"://"+loc.Host+loc.Path != appRedirect || q.Get("error") != "access_denied" || q.Get("state") != az.state ||
		q.Get("iss") != h.s.URL || q.Has("code") {
		t.Fatalf("Back to the app went to %s, want %s with error=access_denied, the state and iss", loc, appRedirect)
	}
}

// testDetailsCancelStopped: a user without a second factor for the
// client's policy is told what to do and offered "Back to <app>", which
// ends the request with access_denied — from the bound browser only: not
// from another browser, not from one without a cookie, not cross-site.
func testDetailsCancelStopped(t *testing.T, h *hfixture) {
	strict := h.detailsClient(t, "strict", "Strict App", "")
	b := newBrowser(t, h.s)
	az := strict.authorize()
	stopped := b.submit(h.passwordPage(t, b, az), map[string]string{"username": "nora", "password": h.nora.password})
	if stopped.status != http.StatusForbidden || !strings.Contains(stopped.body, "Ask your administrator for an enrolment link") ||
		!strings.Contains(stopped.body, ">Back to Strict App</button>") || strings.Contains(stopped.body, "Sign in again") {
		t.Fatalf("no second factor: status %d, want 403 with what to do and Back to Strict App, no restart:\n%s", stopped.status, stopped.body)
	}
	f := formTo(stopped, "/login/cancel")
	arID := f.Values.Get("authRequestID")
	target := h.s.URL + "/login/cancel"
	open := func(what string) {
		t.Helper()
		if ar, err := h.s.db.GetAuthRequest(t.Context(), arID); err != nil || ar.ErrorCode != "" || ar.Done {
			t.Fatalf("%s ended the request: %+v, %v", what, ar, err)
		}
	}

	other := newBrowser(t, h.s)
	h.passwordPage(t, other, strict.authorize()) // a binding of its own
	if r := other.post(target, f.Values); r.status != http.StatusForbidden || r.header.Get("Location") != "" || hasForm(r, "/login/cancel") {
		t.Fatalf("cancel from another browser: status %d, Location %q", r.status, r.header.Get("Location"))
	}
	open("another browser")
	if r := newBrowser(t, h.s).post(target, f.Values); r.status != http.StatusForbidden {
		t.Fatalf("cancel without a cookie: status %d", r.status)
	}
	open("a browser without a cookie")
	if r := b.post(target, f.Values, "Origin", "https://evil.example.com", "Sec-Fetch-Site", "cross-site"); r.status != http.StatusForbidden ||
		r.header.Get("Location") != "" {
		t.Fatalf("a cross-site cancel: status %d, Location %q", r.status, r.header.Get("Location"))
	}
	open("a cross-site post")

	h.backToApp(t, b.submitForm(stopped, "/login/cancel", nil).location(t), az)
	if ar, err := h.s.db.GetAuthRequest(t.Context(), arID); err != nil || ar.ErrorCode != "access_denied" || !ar.CallbackAt.Valid {
		t.Fatalf("after Back to the app: %+v, %v", ar, err)
	}
	// Once over, it cannot be ended again, and no way back is offered.
	if again := b.post(target, f.Values); again.status != http.StatusGone || hasForm(again, "/login/cancel") {
		t.Fatalf("cancel again: status %d, want 410 without a form:\n%s", again.status, again.body)
	}
	// No session came of it.
	h.passwordPage(t, b, strict.authorize())

	// Where the request can start over (a transaction killed by wrong
	// codes), both ways are offered: "Sign in again", and back to the app.
	rp := h.detailsClient(t, "pages", "Pages App", "")
	db := newBrowser(t, h.s)
	daz := rp.authorize()
	dead := h.killed(t, db, daz)
	if dead.link(t, "Sign in again"); !strings.Contains(dead.body, ">Back to Pages App</button>") {
		t.Fatalf("the dead transaction's page offers no way back:\n%s", dead.body)
	}
	h.backToApp(t, db.submitForm(dead, "/login/cancel", nil).location(t), daz)
}

// testDetailsCancelFromCodePage: the code page's "Cancel and go back"
// ends the request; the right code typed afterwards on the same page
// signs nobody in.
func testDetailsCancelFromCodePage(t *testing.T, h *hfixture) {
	rp := h.detailsClient(t, "pages", "Pages App", "")
	b := newBrowser(t, h.s)
	az := rp.authorize()
	p := h.otpPage(t, b, az, h.alice)
	if !strings.Contains(p.body, ">Cancel and go back to Pages App</button>") {
		t.Fatalf("the code page has no way back:\n%s", p.body)
	}
	h.backToApp(t, b.submitForm(p, "/login/cancel", nil).location(t), az)
	if r := b.submit(p, map[string]string{"otp": h.s.code(t, h.alice)}); r.status != http.StatusGone || r.header.Get("Location") != "" {
		t.Fatalf("the right code after cancelling: status %d, want 410", r.status)
	}
	if s, err := h.s.db.ListUserSessions(t.Context(), h.alice.ID); err != nil || len(s) != 0 {
		t.Fatalf("a code after cancelling left %d sessions (%v)", len(s), err)
	}
	// Positive control: the next sign-in in the same browser completes.
	h.nextStep()
	az = rp.authorize()
	signedInAs(t, rp, az, h.finish(t, b, h.otpPage(t, b, az, h.alice), h.s.code(t, h.alice)), h.alice, "pwd otp mfa")
}

// testDetailsNoWayBackWhenOver: an expired request, or one bound to
// another browser, offers neither "Sign in again" nor "Back to <app>" —
// it could do neither — but says to go back to the application.
func testDetailsNoWayBackWhenOver(t *testing.T, h *hfixture) {
	rp := h.detailsClient(t, "pages", "Pages App", "")
	b := newBrowser(t, h.s)
	az := rp.authorize()
	pw := h.passwordPage(t, b, az)
	if wrong := newBrowser(t, h.s).get(pw.url.String()); wrong.status != http.StatusForbidden || hasForm(wrong, "/login/cancel") ||
		strings.Contains(wrong.body, "Sign in again") || !strings.Contains(wrong.body, "Go back to the application") {
		t.Fatalf("another browser on the password page: status %d:\n%s", wrong.status, wrong.body)
	}
	h.s.clock.Advance(11 * time.Minute)
	over := b.submit(pw, map[string]string{"username": "alice", "password": h.alice.password})
	if over.status != http.StatusGone || hasForm(over, "/login/cancel") || strings.Contains(over.body, "Sign in again") ||
		!strings.Contains(over.body, "Go back to the application") {
		t.Fatalf("an expired request: status %d:\n%s", over.status, over.body)
	}
}

// testDetailsLogoutStay: without an id_token_hint the logout asks first,
// naming the application; "Stay signed in" ends nothing and returns to the
// application's post-logout URI with its state (or, without one, says so
// on a page); "Sign out" ends the session.
func testDetailsLogoutStay(t *testing.T, h *hfixture) {
	if _, err := h.s.db.UpdateClient(t.Context(), "app", func(c *storage.Client) error {
		c.PostLogoutRedirectURIs = storage.Strings{appSignedOut}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, h.s)
	h.signIn(t, b, h.rp.authorize(), h.alice)
	ask := func(q url.Values) (*page, url.Values) {
		t.Helper()
		p := b.get(h.s.URL + "/end_session?" + q.Encode())
		if p.status != http.StatusOK || !strings.Contains(p.body, "Sign out?") || !strings.Contains(p.body, ">Stay signed in</button>") {
			t.Fatalf("the logout confirmation: status %d:\n%s", p.status, p.body)
		}
		_, values := p.form(t)
		return p, values
	}
	stay := func(values url.Values, headers ...string) *page {
		t.Helper()
		v := url.Values{"stay": {"yes"}}
		for k := range values {
			v.Set(k, values.Get(k))
		}
		return b.post(h.s.URL+"/end_session", v, headers...)
	}

	p, values := ask(url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {appSignedOut}, "state": {"s-1"}})
	if !strings.Contains(p.body, "<strong>Example App</strong> asks to sign you out") {
		t.Fatalf("the confirmation does not name the application:\n%s", p.body)
	}
	loc := stay(values).location(t)
	if loc.Scheme+"://"+loc.Host+loc.Path != appSignedOut || loc.Query().Get("state") != "s-1" {
		t.Fatalf("Stay signed in went to %s, want %s with the state", loc, appSignedOut)
	}
	h.silent(t, b, h.rp.authorize())

	// A cross-site "stay" is no choice of the user's: the question again.
	if r := stay(values, "Origin", "https://evil.example.com", "Sec-Fetch-Site", "cross-site"); r.status != http.StatusOK ||
		!strings.Contains(r.body, "Sign out?") {
		t.Fatalf("a cross-site stay: status %d:\n%s", r.status, r.body)
	}

	// Without a post-logout URI (and without any client), a page says so.
	for _, q := range []url.Values{{"client_id": {"app"}}, {}} {
		p, values = ask(q)
		if len(q) == 0 && !strings.Contains(p.body, "An application asks") {
			t.Fatalf("a confirmation without a client:\n%s", p.body)
		}
		if r := stay(values); r.status != http.StatusOK || !strings.Contains(r.body, "You are still signed in") {
			t.Fatalf("stay without a post-logout URI (%v): status %d:\n%s", q, r.status, r.body)
		}
		h.silent(t, b, h.rp.authorize())
	}

	// "Sign out" ends it.
	_, values = ask(url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {appSignedOut}, "state": {"s-2"}})
	loc = b.post(h.s.URL+"/end_session", values).location(t)
	if loc.Scheme+"://"+loc.Host+loc.Path != appSignedOut || loc.Query().Get("state") != "s-2" {
		t.Fatalf("Sign out went to %s", loc)
	}
	h.passwordPage(t, b, h.rp.authorize())
}

// testDetailsSignedOut: the pages a signed-out user lands on say how to
// sign in again.
func testDetailsSignedOut(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	if p := b.get(h.s.URL + "/signed-out"); p.status != http.StatusOK || !strings.Contains(p.body, "To sign in again, open an application") {
		t.Fatalf("/signed-out: status %d:\n%s", p.status, p.body)
	}
	if p := b.get(h.s.URL + "/account"); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "Sign in through an application") {
		t.Fatalf("/account signed out: status %d:\n%s", p.status, p.body)
	}
	h.signIn(t, b, h.rp.authorize(), h.alice)
	acct := b.get(h.s.URL + "/account")
	out := b.submitForm(acct, "/account/signout", nil)
	if out.status != http.StatusOK || !strings.Contains(out.body, "To sign in again, open an application") {
		t.Fatalf("signing out on /account: status %d:\n%s", out.status, out.body)
	}
	h.passwordPage(t, b, h.rp.authorize())
}

// codePageRun is what testdata/interop/code-page.mjs reports.
type codePageRun struct {
	Code, Recovery                                       map[string]string
	DigitsValid, RecoveryInCodeFieldValid, RecoveryValid bool
	At                                                   string
	ConsoleErrors                                        []string
}

// TestCodePageInChromium: in a real browser (Debian's headless Chromium,
// playwright-core) the code field is numeric and the browser itself
// refuses a recovery code typed into it; "Use a recovery code" switches,
// without script, to a text field where the recovery code signs in.
func TestCodePageInChromium(t *testing.T) {
	chromium := needChromium(t)
	s := launch(t, storagetest.SQLite(t), launchOptions{host: "localhost"})
	alice := s.addUser(t, "alice", true)
	var rc map[string]any
	jsonInto(t, s.stile(t, "user", "recovery-codes", "alice", "--json"), &rc)
	codes := toStrings(rc["codes"])
	site := serveElsewhere(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("<!doctype html><title>Back</title><p>Back at the application.</p>"))
	}))
	secret := s.addClient(t, &storage.Client{ID: "pages", Name: "Pages App", Type: storage.ClientWeb, FirstParty: true,
		RedirectURIs: storage.Strings{site + "/cb"}, RequirePKCE: true})
	rp := newRP(t, s, "pages", secret, site+"/cb")
	az := rp.authorize()

	var r codePageRun
	runNode(t, "code-page.mjs", &r, "START_URL="+az.url, "DONE_PREFIX="+site+"/cb", "USERNAME=alice",
		"PASSWORD="+alice.password, "RECOVERY="+codes[0], "CHROMIUM="+chromium)
	if r.Code["inputMode"] != "numeric" || r.Code["autocomplete"] != "one-time-code" || r.Code["type"] != "text" {
		t.Errorf("the code field in Chromium: %v", r.Code)
	}
	if !r.DigitsValid || r.RecoveryInCodeFieldValid {
		t.Errorf("the code field takes 123 456: %v (want true); a recovery code: %v (want false)", r.DigitsValid, r.RecoveryInCodeFieldValid)
	}
	if r.Recovery["inputMode"] != "text" || r.Recovery["autocomplete"] != "off" || r.Recovery["pattern"] != "" ||
		r.Recovery["autocapitalize"] != "none" || r.Recovery["spellcheck"] != "false" || !r.RecoveryValid {
		t.Errorf("the recovery field in Chromium: %v (valid %v)", r.Recovery, r.RecoveryValid)
	}
	at, _ := url.Parse(r.At)
	tok, err := rp.exchange(at.Query().Get("code"), az.verifier)
	if err != nil || at.Query().Get("state") != az.state {
		t.Fatalf("the sign-in ended at %s: %v", r.At, err)
	}
	if c := rp.idClaims(tok, az.nonce); c["sub"] != alice.ID {
		t.Errorf("ID token for %v, want alice", c["sub"])
	}
	if len(r.ConsoleErrors) > 0 {
		t.Errorf("the pages logged errors: %v", r.ConsoleErrors)
	}
}
