package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
)

// TestAuditTrail: every sign-in step outcome lands in the audit trail with
// the right type, outcome, reason, user, client and address, through each
// door; nothing secret does; `stile events` reads it back; retention
// deletes what is old. On SQLite and PostgreSQL.
func TestAuditTrail(t *testing.T) {
	runHeadless(t, []hscenario{
		{"Pages", testTrailPages},
		{"NoSecrets", testTrailNoSecrets},
		{"Refusals", testTrailRefusals},
		{"APIAndDirect", testTrailAPIAndDirect},
		{"EnrolDuringSignIn", testTrailEnrolDuringSignIn},
		{"SelfService", testTrailSelfService},
		{"Rehash", testTrailRehash},
		{"CLI", testTrailCLI},
		{"Follow", testTrailFollow},
		{"Retention", testTrailRetention},
	})
}

// trail returns the events recorded after the one with id after, oldest
// first.
func trail(t *testing.T, s *server, after int64) []storage.Event {
	t.Helper()
	events, err := s.db.ListEvents(t.Context(), storage.EventFilter{Cursor: after, Limit: storage.MaxEventPage})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// lastID is the newest event's id (0: none), to read only what follows.
func lastID(t *testing.T, s *server) int64 {
	t.Helper()
	events, err := s.db.ListEvents(t.Context(), storage.EventFilter{Newest: true, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 {
		return 0
	}
	return events[0].ID
}

// want is what a test expects of one event; empty fields are not checked,
// except that User "-" means none.
type want struct {
	typ, outcome, reason, user, client, remote string
	detail                                     map[string]any
}

func (w want) check(t *testing.T, what string, e storage.Event) {
	t.Helper()
	bad := e.Type != w.typ || (w.outcome != "" && e.Outcome != w.outcome) || e.Reason != w.reason ||
		(w.client != "" && e.ActorClient != w.client) || (w.remote != "" && e.Remote != w.remote)
	switch w.user {
	case "":
	case "-":
		bad = bad || e.UserID != "" || e.ActorUser != ""
	default:
		bad = bad || e.UserID != w.user
	}
	for k, v := range w.detail {
		if fmt.Sprint(e.Detail[k]) != fmt.Sprint(v) {
			bad = true
		}
	}
	if bad {
		t.Fatalf("%s: event %+v, want %+v", what, e, w)
	}
}

// expectTrail checks the events after mark, one by one.
func expectTrail(t *testing.T, s *server, mark int64, wants ...want) []storage.Event {
	t.Helper()
	got := trail(t, s, mark)
	if len(got) != len(wants) {
		var types []string
		for _, e := range got {
			types = append(types, e.Type+"/"+e.Outcome+"/"+e.Reason)
		}
		t.Fatalf("%d events %v, want %d", len(got), types, len(wants))
	}
	for i, w := range wants {
		w.check(t, fmt.Sprintf("event %d", i+1), got[i])
	}
	return got
}

const loopbackAddr = "127.0.0.1"

// testTrailPages: on stile's pages, an unknown username, a wrong password,
// the right one, a wrong code, the right one and a logout each leave their
// event; an unknown username's event names nobody.
func testTrailPages(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	az := h.rp.authorize()
	form := h.passwordPage(t, b, az)
	mark := lastID(t, h.s)
	if p := b.submit(form, map[string]string{"username": "Hunter2-typed-as-a-name", "password": "x"}); p.status != http.StatusUnauthorized {
		t.Fatalf("unknown user: %d", p.status)
	}
	if p := b.submit(form, map[string]string{"username": "alice", "password": "not alice's"}); p.status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", p.status)
	}
	otp := b.submit(form, map[string]string{"username": "alice", "password": h.alice.password})
	right := h.s.code(t, h.alice)
	if p := b.submit(otp, map[string]string{"otp": wrongCode(right)}); p.status != http.StatusForbidden {
		t.Fatalf("wrong code: %d", p.status)
	}
	h.finish(t, b, otp, right)
	pages := map[string]any{"door": storage.DoorPages}
	events := expectTrail(t, h.s, mark,
		want{typ: login.EventPassword, outcome: storage.Failure, reason: "invalid_credentials", user: "-", client: "app", remote: loopbackAddr, detail: pages},
		want{typ: login.EventPassword, outcome: storage.Failure, reason: "invalid_credentials", user: h.alice.ID, client: "app", remote: loopbackAddr},
		want{typ: login.EventPassword, outcome: storage.Success, user: h.alice.ID, client: "app", remote: loopbackAddr,
			detail: map[string]any{"door": storage.DoorPages, "next": login.MethodTOTP}},
		want{typ: login.EventSecondFactor, outcome: storage.Failure, reason: "wrong_code", user: h.alice.ID, client: "app",
			detail: map[string]any{"method": login.MethodTOTP}},
		want{typ: login.EventSecondFactor, outcome: storage.Success, user: h.alice.ID, client: "app", remote: loopbackAddr,
			detail: map[string]any{"method": login.MethodTOTP}},
		want{typ: login.EventSucceeded, outcome: storage.Success, user: h.alice.ID, client: "app", remote: loopbackAddr,
			detail: map[string]any{"amr": []any{"pwd", "otp", "mfa"}, "door": storage.DoorPages}},
	)
	if events[0].Actor != "" || strings.Contains(mustJSON(events[0]), "Hunter2") {
		t.Fatalf("the unknown username is in the trail: %+v", events[0])
	}
	session, _ := events[5].Detail["session"].(string)
	if session == "" {
		t.Fatal("login.succeeded names no session")
	}

	mark = lastID(t, h.s)
	sp := b.post(h.s.URL+"/account/signout", url.Values{})
	if sp.status != http.StatusOK {
		t.Fatalf("sign out: %d", sp.status)
	}
	expectTrail(t, h.s, mark, want{typ: login.EventLogout, outcome: storage.Success, user: h.alice.ID, remote: loopbackAddr,
		detail: map[string]any{"session": session}})
	// Signing out again ends nothing and records nothing.
	b.post(h.s.URL+"/account/signout", url.Values{})
	if got := trail(t, h.s, mark); len(got) != 1 {
		t.Fatalf("a second sign-out recorded %d events", len(got)-1)
	}
}

// testTrailNoSecrets: after a full sign-in with offline_access, a wrong
// code and a code exchange, no column of any event holds the password, a
// code, the session cookie, the authorization code or a token — while the
// same scan finds what must be there (positive control).
func testTrailNoSecrets(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	az := h.rp.authorize("scope", "openid offline_access")
	otp := h.otpPage(t, b, az, h.alice)
	right := h.s.code(t, h.alice)
	wrong := wrongCode(right)
	b.submit(otp, map[string]string{"otp": wrong})
	code := h.finish(t, b, otp, right).Query().Get("code")
	resp, tokens := rawToken(t, h.s, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {appRedirect}, "code_verifier": {az.verifier}}, "app", h.secret)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("exchange: %d %v", resp.StatusCode, tokens)
	}
	cookie := b.cookie("stile_session")
	if cookie == nil {
		t.Fatal("no session cookie")
	}
	// RP-initiated logout with the ID token as hint: the trail names the
	// session's user, and holds nothing of the hint either.
	mark := lastID(t, h.s)
	hint, _ := tokens["id_token"].(string)
	if p := b.get(h.s.URL + "/end_session?" + url.Values{"id_token_hint": {hint}}.Encode()); p.url.Path != "/signed-out" {
		t.Fatalf("logout: %s %d", p.url, p.status)
	}
	expectTrail(t, h.s, mark, want{typ: login.EventLogout, outcome: storage.Success, user: h.alice.ID, remote: loopbackAddr})
	all := mustJSON(trail(t, h.s, 0))
	secrets := map[string]string{"password": h.alice.password, "right code": right, "wrong code": wrong,
		"session cookie": cookie.Value, "authorization code": code, "totp secret": h.alice.totpSecret}
	for _, k := range []string{"id_token", "access_token", "refresh_token"} {
		secrets[k], _ = tokens[k].(string)
	}
	for what, s := range secrets {
		if s == "" {
			t.Fatalf("no %s to look for", what)
		}
		if strings.Contains(all, s) {
			t.Errorf("the trail holds the %s", what)
		}
	}
	for _, must := range []string{h.alice.ID, login.EventSucceeded, login.EventLogout, `"app"`} {
		if !strings.Contains(all, must) {
			t.Fatalf("the scan does not find %s in:\n%s", must, all)
		}
	}
}

// testTrailRefusals: a recovery code, a transaction killed by wrong
// codes, a disabled account and a lock (throttled) each leave their
// reason; a request refused before any check (malformed, or a dead
// transaction) leaves none.
func testTrailRefusals(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	form := h.passwordPage(t, b, h.rp.authorize())
	mark := lastID(t, h.s)
	if p := b.submit(form, map[string]string{"username": "alice", "password": ""}); p.status != http.StatusBadRequest {
		t.Fatalf("an empty password: %d", p.status)
	}
	expectTrail(t, h.s, mark) // nothing: it was refused before any check
	if p := b.submit(form, map[string]string{"username": "alice", "password": "wrong"}); p.status != http.StatusUnauthorized {
		t.Fatalf("positive control, a wrong password: %d", p.status)
	}
	expectTrail(t, h.s, mark, want{typ: login.EventPassword, outcome: storage.Failure, reason: "invalid_credentials", user: h.alice.ID})

	// A recovery code in place of TOTP: method RECOVERY.
	codes := h.recoveryCodes(t, h.alice)
	otp := h.otpPage(t, b, h.rp.authorize(), h.alice)
	mark = lastID(t, h.s)
	h.finish(t, b, otp, codes[0])
	expectTrail(t, h.s, mark,
		want{typ: login.EventSecondFactor, outcome: storage.Success, user: h.alice.ID, detail: map[string]any{"method": login.MethodRecovery}},
		want{typ: login.EventSucceeded, outcome: storage.Success, user: h.alice.ID})

	// Five wrong emailed codes kill emma's transaction; a sixth try finds
	// it dead before any check.
	b = newBrowser(t, h.s) // alice's browser would sign in silently
	otp = h.otpPage(t, b, h.rp.authorize(), h.emma)
	right := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
	mark = lastID(t, h.s)
	for range 5 {
		b.submit(otp, map[string]string{"otp": wrongCode(right)})
	}
	b.submit(otp, map[string]string{"otp": right})
	got := trail(t, h.s, mark)
	if len(got) != 5 {
		t.Fatalf("%d events for five wrong codes and one on the dead transaction: %s, want 5", len(got), types(got))
	}
	for i, e := range got {
		want{typ: login.EventSecondFactor, outcome: storage.Failure, reason: "wrong_code", user: h.emma.ID, client: "app",
			detail: map[string]any{"method": login.MethodEmail}}.check(t, fmt.Sprint("wrong code ", i+1), e)
	}

	// Disabled: the right password, refused.
	if _, err := h.s.db.UpdateUser(t.Context(), h.nora.ID, func(u *storage.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	form = h.passwordPage(t, b, h.rp.authorize())
	mark = lastID(t, h.s)
	if p := b.submit(form, map[string]string{"username": "nora", "password": h.nora.password}); p.status != http.StatusForbidden {
		t.Fatalf("disabled: %d", p.status)
	}
	expectTrail(t, h.s, mark, want{typ: login.EventPassword, outcome: storage.Failure, reason: "disabled", user: h.nora.ID, client: "app"})

	// Locked after five wrong passwords: even the right one is refused.
	for range 5 {
		b.submit(form, map[string]string{"username": "alice", "password": "wrong"})
	}
	mark = lastID(t, h.s)
	if p := b.submit(form, map[string]string{"username": "alice", "password": h.alice.password}); p.status != http.StatusTooManyRequests {
		t.Fatalf("while locked: %d", p.status)
	}
	expectTrail(t, h.s, mark, want{typ: login.EventPassword, outcome: storage.Failure, reason: "throttled", user: h.alice.ID, client: "app"})
}

// testTrailAPIAndDirect: the JSON API's and the direct mode's steps are
// recorded with their door and client; the direct mode's with the end
// user's address from X-End-User-IP, not the backend's.
func testTrailAPIAndDirect(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	arID, az := h.handoff(t, b)
	mark := lastID(t, h.s)
	r := h.authenticate(t, arID, h.alice)
	expect(t, "authenticate", r, http.StatusOK, "")
	v := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": h.s.code(t, h.alice)})
	h.finishAPI(t, b, az, v)
	api := map[string]any{"door": storage.DoorAPI}
	expectTrail(t, h.s, mark,
		want{typ: login.EventPassword, outcome: storage.Success, user: h.alice.ID, client: "custom", remote: loopbackAddr, detail: api},
		want{typ: login.EventSecondFactor, outcome: storage.Success, user: h.alice.ID, client: "custom", detail: api},
		want{typ: login.EventSucceeded, outcome: storage.Success, user: h.alice.ID, client: "custom", detail: api})

	c := h.dmAdd(t, "cms")
	h.nextStep()
	mark = lastID(t, h.s)
	end := []string{"X-End-User-IP", "203.0.113.9"}
	r = h.dmCall(t, "authenticate", map[string]string{"username": "alice", "password": "wrong", "apiKey": c.apiKey}, end...)
	expect(t, "a wrong password", r, http.StatusUnauthorized, string(login.CodeInvalidCredentials))
	r = h.dmCall(t, "authenticate", map[string]string{"username": "alice", "password": h.alice.password, "apiKey": c.apiKey}, end...)
	expect(t, "authenticate", r, http.StatusOK, "")
	h.dmTokens(t, c, h.dmLogin(t, c.apiKey, "alice", r.str("transactionID"), login.MethodTOTP, h.s.code(t, h.alice), end...), h.alice, "pwd otp mfa")
	direct := map[string]any{"door": storage.DoorDirect}
	expectTrail(t, h.s, mark,
		want{typ: login.EventPassword, outcome: storage.Failure, reason: "invalid_credentials", user: h.alice.ID, client: "cms", remote: "203.0.113.9", detail: direct},
		want{typ: login.EventPassword, outcome: storage.Success, user: h.alice.ID, client: "cms", remote: "203.0.113.9", detail: direct},
		want{typ: login.EventSecondFactor, outcome: storage.Success, user: h.alice.ID, client: "cms", remote: "203.0.113.9", detail: direct},
		want{typ: login.EventSucceeded, outcome: storage.Success, user: h.alice.ID, client: "cms", remote: "203.0.113.9", detail: direct})
}

// testTrailEnrolDuringSignIn: a sign-in that proves the email address and
// then sets up an authenticator (the custom client's policy) records each
// step: the password, the emailed code, a wrong and the right first code of
// the new authenticator (factor.enrolled, via sign_in), and the sign-in.
func testTrailEnrolDuringSignIn(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	arID, az := h.handoff(t, b)
	mark := lastID(t, h.s)
	r := h.authenticate(t, arID, h.nora)
	tx := r.str("transactionID")
	e := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": tx, "otp": codeIn(t, h.mail.last(t, "nora@example.com", "sign-in code"))})
	h.nora.totpSecret = e.str("secret")
	h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": tx, "otp": wrongCode(h.s.code(t, h.nora))})
	h.finishAPI(t, b, az, h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": tx, "otp": h.s.code(t, h.nora)}))
	enrol := map[string]any{"method": login.MethodTOTP, "via": "sign_in"}
	expectTrail(t, h.s, mark,
		want{typ: login.EventPassword, outcome: storage.Success, user: h.nora.ID, client: "custom", detail: map[string]any{"next": login.MethodEmail}},
		want{typ: login.EventSecondFactor, outcome: storage.Success, user: h.nora.ID, client: "custom",
			detail: map[string]any{"method": login.MethodEmail, "next": login.MethodTOTPEnroll}},
		want{typ: login.EventFactorEnrolled, outcome: storage.Failure, reason: "wrong_code", user: h.nora.ID, client: "custom", detail: enrol},
		want{typ: login.EventFactorEnrolled, outcome: storage.Success, user: h.nora.ID, client: "custom", detail: enrol},
		want{typ: login.EventSucceeded, outcome: storage.Success, user: h.nora.ID, client: "custom"})
}

// testTrailSelfService: each self-service factor change is recorded with
// the user and the client whose token made it, failed proofs included.
func testTrailSelfService(t *testing.T, h *hfixture) {
	tok := h.mfaToken(t, newBrowser(t, h.s), h.alice, h.totpCode(t, h.alice)).AccessToken
	h.nextStep()
	mark := lastID(t, h.s)
	right := h.s.code(t, h.alice)
	expect(t, "codes with a wrong proof", h.mfa(t, http.MethodPost, "/recovery-codes", tok, otpBody(wrongCode(right))), http.StatusForbidden, "invalid_otp")
	expect(t, "codes", h.mfa(t, http.MethodPost, "/recovery-codes", tok, otpBody(right)), http.StatusOK, "")
	h.nextStep()
	expect(t, "add with a wrong proof", h.mfa(t, http.MethodPost, "/totp", tok, otpBody(wrongCode(h.s.code(t, h.alice)))), http.StatusForbidden, "invalid_otp")
	added := h.mfa(t, http.MethodPost, "/totp", tok, otpBody(h.s.code(t, h.alice)))
	expect(t, "add", added, http.StatusOK, "")
	expect(t, "confirm", h.mfa(t, http.MethodPost, "/totp/confirm", tok, otpBody(h.totpOf(t, added.str("secret")))), http.StatusOK, "")
	h.nextStep()
	expect(t, "remove", h.mfa(t, http.MethodDelete, "/totp", tok, otpBody(h.totpOf(t, added.str("secret")))), http.StatusOK, "")
	expect(t, "preferred", h.mfa(t, http.MethodPut, "/preferred", tok, map[string]string{"method": login.MethodEmail}), http.StatusOK, "")
	w := func(typ, outcome, reason string, detail map[string]any) want {
		return want{typ: typ, outcome: outcome, reason: reason, user: h.alice.ID, client: "app", remote: loopbackAddr, detail: detail}
	}
	expectTrail(t, h.s, mark,
		w(login.EventRecoveryCodes, storage.Failure, "wrong_code", nil),
		w(login.EventRecoveryCodes, storage.Success, "", nil),
		w(login.EventTOTPAdded, storage.Failure, "wrong_code", map[string]any{"step": "proof"}),
		w(login.EventTOTPAdded, storage.Success, "", map[string]any{"method": login.MethodTOTP}),
		w(login.EventFactorRemoved, storage.Success, "", map[string]any{"method": login.MethodTOTP}),
		w(login.EventPreferredMethod, storage.Success, "", map[string]any{"method": login.MethodEmail}))
}

// testTrailRehash: the password step that replaces an outdated hash with
// stile's current argon2id says so in its event; the next one, with the
// hash current, does not.
func testTrailRehash(t *testing.T, h *hfixture) {
	weak, err := login.Argon2id{Memory: 19 * 1024, Time: 2, Threads: 1}.Hash(h.alice.password)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.db.UpdateUser(t.Context(), h.alice.ID, func(u *storage.User) error { u.PasswordHash = weak; return nil }); err != nil {
		t.Fatal(err)
	}
	for i, rehashed := range []bool{true, false} {
		mark := lastID(t, h.s)
		h.otpPage(t, newBrowser(t, h.s), h.rp.authorize(), h.alice)
		got := expectTrail(t, h.s, mark, want{typ: login.EventPassword, outcome: storage.Success, user: h.alice.ID})
		if from, ok := got[0].Detail["rehashed_from"]; ok != rehashed || (rehashed && from == "") {
			t.Fatalf("sign-in %d: rehashed_from %v (%v), want it %v", i+1, from, ok, rehashed)
		}
	}
}
