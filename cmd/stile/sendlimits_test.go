package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestSendLimits attacks the sending of codes (issue 9, items 5 and 6):
// password posts for a user with an emailed or texted code, from the
// JSON API and stile's pages, must not turn stile into a texting cannon —
// at most 3 codes a minute and 10 an hour reach one user or one
// destination, across transactions, and the answer never says whether a
// code was sent. Resends are limited per source address. On SQLite and
// PostgreSQL; loopback is a trusted proxy, so X-Forwarded-For stands for
// other source addresses.
func TestSendLimits(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, sc := range []hscenario{
				{"SMSFromTheAPI", testSendsSMSFromAPI},
				{"SMSFromThePages", testSendsSMSFromPages},
				{"PerDestination", testSendsPerDestination},
				{"EnrolmentPolicy", testSendsEnrolmentPolicy},
				{"ResendPerAddress", testResendPerAddress},
			} {
				t.Run(sc.name, func(t *testing.T) { sc.fn(t, newSendsFixture(t, d.URL(t))) })
			}
		})
	}
}

func newSendsFixture(t *testing.T, dbURL string) *hfixture {
	mb, gw := newMailbox(t), newSMSGateway(t)
	return seedHeadless(t, startServer(t, dbURL, delivery(t, mb, gw), trustLoopback), mb, gw)
}

// count is how many texts went to a number.
func (g *smsGateway) count(number string) int {
	to, _ := storage.E164(number)
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, m := range g.got {
		if m.To == to {
			n++
		}
	}
	return n
}

const samNumber = "+447700900123"

// apiPasswords posts u's right password n times through the JSON API, each
// time for a new authorization, checks that every answer is the same
// (transactionID aside), and returns the transactions.
func (h *hfixture) apiPasswords(t *testing.T, u *user, n int, message string) []string {
	t.Helper()
	var txs []string
	var first string
	for i := range n {
		arID, _ := h.handoff(t, newBrowser(t, h.s))
		r := h.authenticate(t, arID, u)
		expect(t, fmt.Sprintf("password post %d", i+1), r, http.StatusOK, "")
		txs = append(txs, r.str("transactionID"))
		delete(r.body, "transactionID")
		got := fmt.Sprintf("%d %v", r.status, r.body)
		if first == "" {
			first = got
		}
		if got != first || r.str("message") != message {
			t.Fatalf("password post %d answered %s; the first answered %s; want the message %q", i+1, got, first, message)
		}
	}
	return txs
}

func testSendsSMSFromAPI(t *testing.T, h *hfixture) {
	const msg = "We sent a 6-digit code to •••• 0123."
	// Twelve password posts in a second: three texts, twelve equal answers.
	txs := h.apiPasswords(t, h.sam, 12, msg)
	if n := h.sms.count(samNumber); n != 3 {
		t.Fatalf("12 password posts in a minute sent %d texts, want 3", n)
	}
	if !strings.Contains(h.s.logs.String(), "one-time code not sent: send limit reached") {
		t.Fatal("the suppressed sends were not logged")
	}
	// A suppressed transaction's code is nobody's: the last code sent does
	// not open it.
	sent := codeIn(t, must(h.sms.last(t, samNumber)))
	expect(t, "another transaction's code on a suppressed one", h.call(t, "/login/api/verify", customOrigin,
		map[string]string{"transactionID": txs[11], "otp": sent}), http.StatusForbidden, "invalid_otp")

	// The limit is the user's, not the number's alone: a new number on
	// file gets nothing more this minute.
	setPhone := func(number string) {
		if _, err := h.s.db.UpdateUser(t.Context(), h.sam.ID, func(u *storage.User) error { u.Phone = number; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	setPhone("+447700900999")
	h.apiPasswords(t, h.sam, 1, "We sent a 6-digit code to •••• 0999.")
	if n := h.sms.count("+447700900999"); n != 0 {
		t.Fatalf("a new number of a user at the limit got %d texts", n)
	}
	setPhone(samNumber)

	// Each new minute allows three more, up to ten in the hour.
	for minute, want := range []int{6, 9, 10, 10} {
		h.s.clock.Advance(61 * time.Second)
		h.apiPasswords(t, h.sam, 4, msg)
		if n := h.sms.count(samNumber); n != want {
			t.Fatalf("minute %d: %d texts in all, want %d", minute+2, n, want)
		}
	}
	// The real user whose code was suppressed waits out the window, asks
	// for a new code on their transaction, and signs in with it.
	h.s.clock.Advance(time.Hour)
	arID, _ := h.handoff(t, newBrowser(t, h.s))
	tx := h.authenticate(t, arID, h.sam).str("transactionID")
	if n := h.sms.count(samNumber); n != 11 {
		t.Fatalf("after the hour: %d texts, want 11", n)
	}
	code := codeIn(t, must(h.sms.last(t, samNumber)))
	v := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": tx, "otp": code})
	if expect(t, "the code after the hour", v, http.StatusOK, ""); v.str("redirectURI") == "" {
		t.Fatalf("verify: %v", v.body)
	}
}

func must(msg, _ string) string { return msg }

// codePage normalises a code page for comparison: without the IDs of its
// authorization and transaction, which differ each time.
func codePage(t *testing.T, p *page) string {
	t.Helper()
	_, v := p.form(t)
	return fmt.Sprintf("%d %s", p.status, strings.NewReplacer(v.Get("transactionID"), "TX", v.Get("authRequestID"), "AR",
		url.QueryEscape(v.Get("transactionID")), "TX", url.QueryEscape(v.Get("authRequestID")), "AR").Replace(p.body))
}

func testSendsSMSFromPages(t *testing.T, h *hfixture) {
	var first string
	var pages []*page
	var browsers []*browser
	for i := range 12 {
		b := newBrowser(t, h.s)
		p := h.otpPage(t, b, h.rp.authorize(), h.sam)
		got := codePage(t, p)
		if first == "" {
			first = got
		}
		if got != first || !strings.Contains(p.body, "We sent a 6-digit code to •••• 0123.") {
			t.Fatalf("code page %d differs from the first:\n%s\n---\n%s", i+1, got, first)
		}
		pages, browsers = append(pages, p), append(browsers, b)
	}
	if n := h.sms.count(samNumber); n != 3 {
		t.Fatalf("12 password posts on the pages sent %d texts, want 3", n)
	}

	// The owner behind the fourth page got no text. Pressing "Send a new
	// code" within the minute looks like any resend, and sends nothing yet.
	b, p := browsers[3], pages[3]
	h.s.clock.Advance(31 * time.Second)
	again := b.submitForm(p, "/login/otp/resend", nil)
	if again.status != http.StatusOK || !strings.Contains(again.body, "A new code is on its way.") || h.sms.count(samNumber) != 3 {
		t.Fatalf("a resend within the minute: status %d, %d texts:\n%s", again.status, h.sms.count(samNumber), again.body)
	}
	// After the minute, the next resend sends, and the code signs them in.
	h.s.clock.Advance(31 * time.Second)
	again = b.submitForm(again, "/login/otp/resend", nil)
	if again.status != http.StatusOK || h.sms.count(samNumber) != 4 {
		t.Fatalf("a resend after the minute: status %d, %d texts, want 4", again.status, h.sms.count(samNumber))
	}
	loc := h.finish(t, b, again, codeIn(t, must(h.sms.last(t, samNumber))))
	if loc.Query().Get("code") == "" {
		t.Fatalf("signed in to %s", loc)
	}
}

func testSendsPerDestination(t *testing.T, h *hfixture) {
	// A phone number belongs to one account at a time (since migration
	// 0015; an email address since 0011), but it can move: carl gets two
	// texts, gives the number up, and dora takes it (spelled differently).
	// The destination's limit holds across them.
	email := func(addr string) func(*storage.User) {
		return func(u *storage.User) { u.Email, u.Preferred = addr, login.MethodEmail }
	}
	phone := func(number string) func(*storage.User) {
		return func(u *storage.User) { u.Phone, u.Preferred = number, login.MethodSMS }
	}
	ann := h.userWith(t, "ann", email("shared@example.com"))
	carl := h.userWith(t, "carl", phone("+1 202 555 0142"))
	carol := h.userWith(t, "carol", email("carol@example.com"))
	for range 2 {
		h.apiPasswords(t, ann, 1, "We sent a 6-digit code to s•••@example.com.")
		h.apiPasswords(t, carl, 1, "We sent a 6-digit code to •••• 0142.")
	}
	if _, err := h.s.db.UpdateUser(t.Context(), carl.ID, func(u *storage.User) error { u.Phone = "+1 202 555 0199"; return nil }); err != nil {
		t.Fatal(err)
	}
	dora := h.userWith(t, "dora", phone("+12025550142"))
	h.apiPasswords(t, dora, 2, "We sent a 6-digit code to •••• 0142.")
	if n := h.mail.count("shared@example.com"); n != 2 {
		t.Fatalf("two posts for one mailbox sent %d mails, want 2", n)
	}
	if n := h.sms.count("+12025550142"); n != 3 {
		t.Fatalf("four posts for two users of one phone sent %d texts, want 3", n)
	}
	// Positive control: another destination is not held back meanwhile.
	h.apiPasswords(t, carol, 1, "We sent a 6-digit code to c•••@example.com.")
	if n := h.mail.count("carol@example.com"); n != 1 {
		t.Fatalf("carol got %d mails, want 1", n)
	}
	// The database holds no address, only its MAC.
	for _, k := range rateLimitKeys(t, h.s) {
		if strings.Contains(strings.ToLower(k), "shared") || strings.Contains(k, "2025550142") {
			t.Fatalf("a rate-limit key names the destination: %s", k)
		}
	}
}

func testSendsEnrolmentPolicy(t *testing.T, h *hfixture) {
	// nora has no second factor; the custom client's policy emails her a
	// code before she may enrol an authenticator. That code is limited too.
	h.apiPasswords(t, h.nora, 5, "We sent a 6-digit code to n•••@example.com.")
	if n := h.mail.count("nora@example.com"); n != 3 {
		t.Fatalf("5 password posts under the email-then-TOTP policy sent %d mails, want 3", n)
	}
}

func testResendPerAddress(t *testing.T, h *hfixture) {
	const a, other = "198.51.100.7", "198.51.100.8"
	resend := func(tx, from string) apiResult {
		return callJSON(t, http.MethodPost, h.s.URL+"/login/api/resend", map[string]string{"transactionID": tx},
			"Origin", customOrigin, "X-Forwarded-For", from)
	}
	arID, _ := h.handoff(t, newBrowser(t, h.s))
	tx := h.authenticate(t, arID, h.emma).str("transactionID")
	// Ten resends from one address within the cooldown: each refused by
	// the cooldown, each counted against the address...
	for range 10 {
		if r := resend(tx, a); r.status != http.StatusTooManyRequests || !strings.Contains(r.str("message"), "A code was just sent") {
			t.Fatalf("a resend within the cooldown: %d %v", r.status, r.body)
		}
	}
	// ... so that the eleventh is refused by the address's limit, even
	// after the cooldown, and even for a transaction ID that is nobody's.
	h.s.clock.Advance(31 * time.Second)
	for _, id := range []string{tx, "no-such-transaction"} {
		r := resend(id, a)
		if expect(t, "resend over the address's limit", r, http.StatusTooManyRequests, "throttled"); !strings.Contains(r.str("message"), "Too many new codes") {
			t.Fatalf("the address limit's message: %v", r.body)
		}
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
			t.Fatalf("Retry-After %q, want 1-60 s", r.header.Get("Retry-After"))
		}
	}
	// Another address resends the same transaction's code.
	expect(t, "resend from another address", resend(tx, other), http.StatusOK, "")
	if n := h.mail.count("emma@example.com"); n != 2 {
		t.Fatalf("%d mails to emma, want 2", n)
	}

	// The pages count the same way: the address is still over its limit,
	// another is not.
	b := newBrowser(t, h.s)
	p := h.otpPage(t, b, h.rp.authorize(), h.emma)
	h.s.clock.Advance(time.Second)
	_, form := p.form(t)
	target := h.s.URL + "/login/otp/resend"
	if r := b.post(target, form, "X-Forwarded-For", a); r.status != http.StatusTooManyRequests ||
		!strings.Contains(r.body, "Too many new codes") || r.header.Get("Retry-After") == "" {
		t.Fatalf("a page resend over the address's limit: %d %v\n%s", r.status, r.header, r.body)
	}
	if r := b.post(target, form, "X-Forwarded-For", other); r.status != http.StatusTooManyRequests ||
		!strings.Contains(r.body, "A code was just sent") {
		t.Fatalf("a page resend from another address, within the cooldown: %d\n%s", r.status, r.body)
	}
	// After the window the first address may resend again.
	h.s.clock.Advance(31 * time.Second)
	expect(t, "resend after the window", resend(tx, a), http.StatusOK, "")
}

// rateLimitKeys reads the keys of the rate_limits table over a connection
// of its own, as someone who got hold of the database would.
func rateLimitKeys(t *testing.T, s *server) []string {
	t.Helper()
	driver, dsn := "postgres", s.dbURL
	if path, ok := strings.CutPrefix(s.dbURL, "sqlite:"); ok {
		driver, dsn = "sqlite", "file:"+strings.TrimPrefix(path, "//")+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), "SELECT key FROM rate_limits")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil || len(keys) == 0 {
		t.Fatalf("rate_limits: %d keys, %v", len(keys), err)
	}
	return keys
}

// TestSendLimitsAcrossInstances runs the attack against two instances on
// one PostgreSQL, behind a proxy that alternates between them: the send
// and resend limits are counted in the database, so spreading the posts
// over instances gains nothing.
func TestSendLimitsAcrossInstances(t *testing.T) {
	c := startCluster(t, trustLoopback)
	h := c.h

	txs := h.apiPasswords(t, h.sam, 12, "We sent a 6-digit code to •••• 0123.")
	if n := h.sms.count(samNumber); n != 3 {
		t.Fatalf("12 password posts over two instances sent %d texts, want 3", n)
	}
	// Resends from one address, alternating instances: the eleventh is
	// refused by the address's limit; another address is not.
	h.s.clock.Advance(31 * time.Second)
	resend := func(from string) apiResult {
		return callJSON(t, http.MethodPost, h.s.URL+"/login/api/resend", map[string]string{"transactionID": txs[0]},
			"Origin", customOrigin, "X-Forwarded-For", from)
	}
	for i := range 10 {
		if r := resend("198.51.100.7"); r.status == http.StatusTooManyRequests && strings.Contains(r.str("message"), "Too many new codes") {
			t.Fatalf("resend %d refused by the address's limit: %v", i+1, r.body)
		}
	}
	expect(t, "the eleventh resend from one address", resend("198.51.100.7"), http.StatusTooManyRequests, "throttled")
	if r := resend("198.51.100.8"); r.status == http.StatusTooManyRequests && strings.Contains(r.str("message"), "Too many new codes") {
		t.Fatalf("another address's resend: %v", r.body)
	}
	if h.sms.count(samNumber) != 3 {
		t.Fatalf("resends within the minute sent %d texts in all, want 3", h.sms.count(samNumber))
	}
	// After the minute, more codes go out again.
	h.s.clock.Advance(31 * time.Second)
	expect(t, "resend after the minute", resend("198.51.100.8"), http.StatusOK, "")
	if n := h.sms.count(samNumber); n != 4 {
		t.Fatalf("after the minute: %d texts, want 4", n)
	}
	if a, b := c.hits[0].Load(), c.hits[1].Load(); a < 10 || b < 10 {
		t.Fatalf("the proxy sent %d and %d requests to the instances; want both busy", a, b)
	}
}
