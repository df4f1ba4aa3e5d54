package main

import (
	"crypto/sha256"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestTokenRules attacks the token rules of issue 9 item 10 with
// concurrent racers, on SQLite and on PostgreSQL: a replayed code revokes
// the whole grant, refresh tokens too; a rotated refresh token retried
// inside the grace window gets the same successor, and after it ends the
// family.
func TestTokenRules(t *testing.T) {
	scenarios := []struct {
		name string
		fn   func(*testing.T, string)
	}{
		{"RacedCodeThenReplayRevokesGrant", testRacedCodeRevokesGrant},
		{"ReplayRevokesRotatedFamily", testReplayRevokesRotatedFamily},
		{"GraceRetriesShareOneSuccessor", testGraceRetriesShareOneSuccessor},
		{"NoGraceOneWinner", testNoGraceOneWinner},
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { sc.fn(t, d.URL(t)) })
			}
		})
	}
}

// racers is how many goroutines race (see race in operations_test.go).
const racers = 8

// codeForm signs alice in with offline_access and returns the code
// exchange's form, not yet sent.
func (f *fixture) codeForm(t *testing.T) url.Values {
	t.Helper()
	az := f.rp.authorize("scope", "openid profile offline_access")
	code := f.signIn(t, newBrowser(t, f.s), az, f.alice)
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect},
		"code_verifier": {az.verifier}}
}

// grantDead checks that an access and a refresh token are both refused:
// inactive at introspection, 401 at userinfo, invalid_grant at refresh.
func (f *fixture) grantDead(t *testing.T, access, refresh string) {
	t.Helper()
	if got := f.introspect(t, access, "app", f.secret); got["active"] != false {
		t.Errorf("access token after the replay introspects as %v", got)
	}
	if s := f.userinfoStatus(t, access); s != http.StatusUnauthorized {
		t.Errorf("access token after the replay at userinfo: %d", s)
	}
	if status, body := f.refresh(t, refresh, "app", f.secret); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("refresh token after the replay: %d %v, want invalid_grant", status, body)
	}
}

func testRacedCodeRevokesGrant(t *testing.T, dbURL string) {
	f := newFixture(t, dbURL)
	form := f.codeForm(t)
	// Of the racers RedeemCode admits one; the others are replays and revoke
	// the grant. The one admitted is refused too if a replay came before
	// its answer went out, so at most one gets tokens, and none that work.
	wins, bodies := race(t, f.s, form, f.secret)
	if wins > 1 {
		t.Fatalf("%d of %d concurrent redemptions of one code got tokens, want at most one", wins, racers)
	}
	if resp, body := rawToken(t, f.s, form, "app", f.secret); resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("replay: %d %v", resp.StatusCode, body)
	}
	for _, winner := range bodies {
		f.grantDead(t, winner["access_token"].(string), winner["refresh_token"].(string))
	}
	if live := f.liveGrants(t); live != 0 {
		t.Fatalf("%d refresh tokens of the raced code are live", live)
	}

	// The positive control: a code redeemed once keeps its grant working.
	f.nextStep()
	resp, once := rawToken(t, f.s, f.codeForm(t), "app", f.secret)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("single redemption: %d %v", resp.StatusCode, once)
	}
	if f.introspect(t, once["access_token"].(string), "app", f.secret)["active"] != true {
		t.Fatal("the access token of a code redeemed once is inactive")
	}
	if status, body := f.refresh(t, once["refresh_token"].(string), "app", f.secret); status != http.StatusOK {
		t.Fatalf("the refresh token of a code redeemed once: %d %v", status, body)
	}
}

// testReplayRevokesRotatedFamily: a replay after the refresh token rotated
// ends the newest link and what it issued, not only the first.
func testReplayRevokesRotatedFamily(t *testing.T, dbURL string) {
	f := newFixture(t, dbURL)
	form := f.codeForm(t)
	resp, first := rawToken(t, f.s, form, "app", f.secret)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("exchange: %d %v", resp.StatusCode, first)
	}
	f.s.clock.Advance(30 * time.Second) // the code lives 60 s
	status, rotated := f.refresh(t, first["refresh_token"].(string), "app", f.secret)
	if status != http.StatusOK || f.introspect(t, rotated["access_token"].(string), "app", f.secret)["active"] != true {
		t.Fatalf("refresh before the replay: %d %v", status, rotated)
	}
	// Still inside the code's lifetime, the code comes back.
	if resp, body := rawToken(t, f.s, form, "app", f.secret); body["error"] != "invalid_grant" {
		t.Fatalf("replay: %d %v", resp.StatusCode, body)
	}
	f.grantDead(t, rotated["access_token"].(string), rotated["refresh_token"].(string))
	if got := f.introspect(t, first["access_token"].(string), "app", f.secret); got["active"] != false {
		t.Errorf("the exchange's access token after the replay: %v", got)
	}
}

// liveGrants counts alice's live refresh tokens.
func (f *fixture) liveGrants(t *testing.T) int {
	t.Helper()
	n, err := f.s.db.CountLiveRefreshTokens(t.Context(), f.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// familyOf returns the family of a raw refresh token and its live links.
func (f *fixture) familyOf(t *testing.T, raw string) (live []string) {
	t.Helper()
	h := sha256.Sum256([]byte(raw))
	tok, err := f.s.db.RefreshTokenByHash(t.Context(), h[:])
	if err != nil {
		t.Fatal(err)
	}
	family, err := f.s.db.RefreshFamily(t.Context(), tok.FamilyID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range family {
		if !r.RotatedAt.Valid && r.Usable(f.s.clock.Now()) {
			live = append(live, r.ID)
		}
	}
	return live
}

func testGraceRetriesShareOneSuccessor(t *testing.T, dbURL string) {
	f := newFixture(t, dbURL)
	rt1 := f.offline(t)["refresh_token"].(string)
	f.s.clock.Advance(time.Minute)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}}
	wins, bodies := race(t, f.s, form, f.secret)
	if wins != racers {
		t.Fatalf("%d of %d retries inside the grace window succeeded, want all", wins, racers)
	}
	successor := ""
	for _, b := range bodies {
		rt, _ := b["refresh_token"].(string)
		if successor == "" {
			successor = rt
		}
		if rt != successor || rt == rt1 {
			t.Fatalf("retries inside the grace window got different refresh tokens: %q and %q", successor, rt)
		}
	}
	if live := f.familyOf(t, rt1); len(live) != 1 {
		t.Fatalf("the family holds %d live links after %d retries, want exactly one", len(live), racers)
	}
	// The one successor works, and rotates in turn.
	status, body := f.refresh(t, successor, "app", f.secret)
	if status != http.StatusOK {
		t.Fatalf("the shared successor: %d %v", status, body)
	}
	newest := body["refresh_token"].(string)

	// After the window, the old token ends the family: the successors too.
	f.s.clock.Advance(op.DefaultLifetimes.RefreshGrace + time.Second)
	if status, body := f.refresh(t, rt1, "app", f.secret); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("reuse after the grace window: %d %v", status, body)
	}
	for _, rt := range []string{successor, newest} {
		if status, _ := f.refresh(t, rt, "app", f.secret); status != http.StatusBadRequest {
			t.Fatalf("a successor survived the reuse: %d", status)
		}
	}
	if s := f.userinfoStatus(t, body["access_token"].(string)); s != http.StatusUnauthorized {
		t.Fatalf("an access token of the revoked family at userinfo: %d", s)
	}
}

func testNoGraceOneWinner(t *testing.T, dbURL string) {
	noGrace := op.DefaultLifetimes
	noGrace.RefreshGrace = 0
	f := newFixture(t, dbURL, func(c *appConfig) { c.Lifetimes = noGrace })
	rt1 := f.offline(t)["refresh_token"].(string)
	f.s.clock.Advance(time.Minute)
	if wins, _ := race(t, f.s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}}, f.secret); wins != 1 {
		t.Fatalf("%d of %d concurrent refreshes won without a grace window, want exactly one", wins, racers)
	}
	// The positive control: used once, a token of a new family rotates.
	f.nextStep()
	if status, body := f.refresh(t, f.offline(t)["refresh_token"].(string), "app", f.secret); status != http.StatusOK {
		t.Fatalf("a single refresh without a grace window: %d %v", status, body)
	}
}
