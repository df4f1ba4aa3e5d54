package storage_test

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestLifecycle covers sessions, consents, refresh tokens, key rotation,
// enrolment links and cleanup, on both databases.
func TestLifecycle(t *testing.T) {
	tests := []struct {
		name string
		fn   func(*testing.T, fixture)
	}{
		{"Sessions", testSessions},
		{"EndUserSessions", testEndUserSessions},
		{"Consents", testConsents},
		{"RefreshRotation", testRefreshRotation},
		{"RefreshRotationConcurrent", testRefreshRotationConcurrent},
		{"KeyPromotion", testKeyPromotion},
		{"EnrollmentLinks", testEnrollmentLinks},
		{"DeleteExpired", testDeleteExpired},
		{"DeleteClient", testDeleteClient},
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStoreFixture(t, d)) })
			}
		})
	}
}

func mustRefresh(t *testing.T, f fixture, id, family, userID, sessionID string) *storage.RefreshToken {
	t.Helper()
	r := &storage.RefreshToken{ID: id, TokenHash: []byte("hash-" + id), FamilyID: family, ClientID: "app", UserID: userID,
		SessionID: sql.NullString{String: sessionID, Valid: sessionID != ""}, Scopes: storage.Strings{"openid", "offline_access"},
		AuthTime: f.clock.Now(), AMR: storage.Strings{"pwd"}, ExpiresAt: f.clock.Now().Add(14 * 24 * time.Hour),
		FamilyExpiresAt: f.clock.Now().Add(90 * 24 * time.Hour)}
	if err := f.db.CreateRefreshToken(ctx, r); err != nil {
		t.Fatalf("create refresh token: %v", err)
	}
	return r
}

// successor is the token that replaces parent when it rotates: its ID and
// hash follow from the parent's, as the provider derives them.
func successor(f fixture, userID, parent string) *storage.RefreshToken {
	return &storage.RefreshToken{ID: parent + "-next", TokenHash: []byte("hash-" + parent + "-next"), FamilyID: "fam",
		ClientID: "app", UserID: userID, AuthTime: f.clock.Now(), ExpiresAt: f.clock.Now().Add(14 * 24 * time.Hour),
		FamilyExpiresAt: f.clock.Now().Add(90 * 24 * time.Hour)}
}

func mustAccess(t *testing.T, f fixture, id, userID, family, sessionID string) {
	t.Helper()
	a := &storage.AccessToken{ID: id, ClientID: "app", UserID: userID, ExpiresAt: f.clock.Now().Add(10 * time.Minute),
		FamilyID: sql.NullString{String: family, Valid: family != ""}, SessionID: sql.NullString{String: sessionID, Valid: sessionID != ""}}
	if err := f.db.CreateAccessToken(ctx, a); err != nil {
		t.Fatalf("create access token: %v", err)
	}
}

func revoked(t *testing.T, f fixture, accessID string) bool {
	t.Helper()
	a, err := f.db.GetAccessToken(ctx, accessID)
	if err != nil {
		t.Fatal(err)
	}
	return a.RevokedAt.Valid
}

func testSessions(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "alice")
	mustClient(t, f.db, "app")
	s := mustSession(t, f, u.ID)
	got, err := f.db.SessionByCookie(ctx, s.CookieHash)
	if err != nil || got.ID != s.ID || !got.Active(f.clock.Now(), 30*time.Minute) {
		t.Fatalf("by cookie: %+v, %v", got, err)
	}
	f.clock.Advance(25 * time.Minute)
	f.db.TouchSession(ctx, s.ID)
	f.clock.Advance(25 * time.Minute) // 50 minutes in, 25 since last use
	got, _ = f.db.GetSession(ctx, s.ID)
	if !got.Active(f.clock.Now(), 30*time.Minute) {
		t.Fatal("touched session idled out")
	}
	f.clock.Advance(6 * time.Minute)
	if got.Active(f.clock.Now(), 30*time.Minute) {
		t.Fatal("session active after 31 idle minutes")
	}
	if got.Active(got.CreatedAt.Add(13*time.Hour), 24*time.Hour) {
		t.Fatal("session active past its absolute lifetime")
	}
	mustRefresh(t, f, "r1", "fam1", u.ID, s.ID)
	mustAccess(t, f, "a1", u.ID, "fam1", s.ID)
	other := mustSession(t, f, u.ID)
	mustAccess(t, f, "a2", u.ID, "", other.ID)
	if err := f.db.EndSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	got, _ = f.db.GetSession(ctx, s.ID)
	r, _ := f.db.GetRefreshToken(ctx, "r1")
	if got.Active(f.clock.Now(), time.Hour) || !got.EndedAt.Valid || !r.RevokedAt.Valid || !revoked(t, f, "a1") {
		t.Fatalf("after EndSession: session %+v, refresh revoked %v, access revoked %v", got, r.RevokedAt.Valid, revoked(t, f, "a1"))
	}
	if revoked(t, f, "a2") {
		t.Fatal("ending one session revoked another session's token")
	}
}

func testEndUserSessions(t *testing.T, f fixture) {
	alice, bob := mustUser(t, f.db, "alice"), mustUser(t, f.db, "bob")
	mustClient(t, f.db, "app")
	sa, sb := mustSession(t, f, alice.ID), mustSession(t, f, bob.ID)
	mustRefresh(t, f, "ra", "fa", alice.ID, sa.ID)
	mustRefresh(t, f, "rb", "fb", bob.ID, sb.ID)
	mustAccess(t, f, "aa", alice.ID, "", "")
	mustAccess(t, f, "ab", bob.ID, "", "")
	if err := f.db.EndUserSessions(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	gotA, _ := f.db.GetSession(ctx, sa.ID)
	gotB, _ := f.db.GetSession(ctx, sb.ID)
	ra, _ := f.db.GetRefreshToken(ctx, "ra")
	rb, _ := f.db.GetRefreshToken(ctx, "rb")
	if !gotA.EndedAt.Valid || !ra.RevokedAt.Valid || !revoked(t, f, "aa") {
		t.Fatal("alice's session or tokens survived")
	}
	if gotB.EndedAt.Valid || rb.RevokedAt.Valid || revoked(t, f, "ab") {
		t.Fatal("bob's session or tokens were ended too")
	}
}

func testConsents(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "alice")
	mustClient(t, f.db, "app")
	if _, err := f.db.GetConsent(ctx, u.ID, "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("no consent yet: %v", err)
	}
	if err := f.db.SaveConsent(ctx, u.ID, "app", []string{"openid", "profile"}); err != nil {
		t.Fatal(err)
	}
	c, err := f.db.GetConsent(ctx, u.ID, "app")
	if err != nil || !c.Covers([]string{"openid"}) || c.Covers([]string{"openid", "email"}) {
		t.Fatalf("consent %+v, %v", c, err)
	}
	f.db.SaveConsent(ctx, u.ID, "app", []string{"openid", "profile", "email"})
	if c, _ = f.db.GetConsent(ctx, u.ID, "app"); !c.Covers([]string{"email"}) {
		t.Fatal("saving again did not replace the scopes")
	}
	list, _ := f.db.ListConsents(ctx, u.ID)
	if len(list) != 1 || list[0].ClientID != "app" {
		t.Fatalf("list = %+v", list)
	}
	mustRefresh(t, f, "r1", "fam", u.ID, "")
	mustAccess(t, f, "a1", u.ID, "fam", "")
	if err := f.db.WithdrawConsent(ctx, u.ID, "app"); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.db.GetRefreshToken(ctx, "r1"); !r.RevokedAt.Valid || !revoked(t, f, "a1") {
		t.Fatal("withdrawing consent left the client's tokens active")
	}
	if err := f.db.WithdrawConsent(ctx, u.ID, "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("withdrawing twice: %v", err)
	}
}

func testRefreshRotation(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "alice")
	mustClient(t, f.db, "app")
	r := mustRefresh(t, f, "r1", "fam", u.ID, "")
	got, err := f.db.RefreshTokenByHash(ctx, r.TokenHash)
	if err != nil || !got.Usable(f.clock.Now()) {
		t.Fatalf("fresh token: %+v, %v", got, err)
	}
	grace := 2 * time.Second
	if ok, err := f.db.RotateRefreshToken(ctx, "r1", grace, successor(f, u.ID, "r1")); !ok || err != nil {
		t.Fatalf("first use: %v, %v", ok, err)
	}
	f.clock.Advance(time.Second)
	if ok, _ := f.db.RotateRefreshToken(ctx, "r1", grace, successor(f, u.ID, "r1")); !ok {
		t.Fatal("a retry within the grace window was refused")
	}
	f.clock.Advance(2 * time.Second)
	if ok, _ := f.db.RotateRefreshToken(ctx, "r1", grace, successor(f, u.ID, "r1")); ok {
		t.Fatal("a reuse after the grace window was allowed")
	}
	mustRefresh(t, f, "r2", "fam", u.ID, "")
	mustAccess(t, f, "a2", u.ID, "fam", "")
	if err := f.db.RevokeFamily(ctx, "fam"); err != nil {
		t.Fatal(err)
	}
	r2, _ := f.db.GetRefreshToken(ctx, "r2")
	if r2.Usable(f.clock.Now()) || !revoked(t, f, "a2") {
		t.Fatal("family revocation left a token usable")
	}
	if ok, _ := f.db.RotateRefreshToken(ctx, "r2", grace, successor(f, u.ID, "r2")); ok {
		t.Fatal("a revoked token rotated")
	}
	r3 := mustRefresh(t, f, "r3", "fam3", u.ID, "")
	if r3.Usable(r3.ExpiresAt) || r3.Usable(r3.FamilyExpiresAt) {
		t.Fatal("token usable at its expiry")
	}
}

// testRefreshRotationConcurrent: with no grace window, of many concurrent
// uses of one refresh token exactly one may rotate it.
func testRefreshRotationConcurrent(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "alice")
	mustClient(t, f.db, "app")
	mustRefresh(t, f, "r1", "fam", u.ID, "")
	if wins := countWins(t, 8, func() (bool, error) { return f.db.RotateRefreshToken(ctx, "r1", 0, successor(f, u.ID, "r1")) }); wins != 1 {
		t.Fatalf("%d concurrent rotations won, want exactly 1", wins)
	}
}

func testKeyPromotion(t *testing.T, f fixture) {
	key := func(id, state string, after time.Duration) {
		k := &storage.SigningKey{ID: id, Algorithm: "RS256", PrivateSealed: []byte("p"), PublicJWK: "{}", State: state, Default: true}
		if after > 0 {
			k.ActivateAfter = sql.NullTime{Time: f.clock.Now().Add(after), Valid: true}
		}
		if err := f.db.CreateSigningKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	key("old", storage.KeyActive, 0)
	key("new", storage.KeyNext, time.Hour)
	if ok, err := f.db.PromoteDueKey(ctx, time.Hour); ok || err != nil {
		t.Fatalf("promoted before activate_after: %v, %v", ok, err)
	}
	f.clock.Advance(time.Hour)
	if ok, err := f.db.PromoteDueKey(ctx, 30*time.Minute); !ok || err != nil {
		t.Fatalf("promote when due: %v, %v", ok, err)
	}
	active, _ := f.db.ActiveSigningKey(ctx)
	if active.ID != "new" {
		t.Fatalf("active = %s, want new", active.ID)
	}
	keys, _ := f.db.ListSigningKeys(ctx)
	for _, k := range keys {
		if k.ID == "old" && (k.State != storage.KeyRetired || !k.Published(f.clock.Now()) || k.Published(f.clock.Now().Add(31*time.Minute))) {
			t.Fatalf("old key after promotion: %+v", k)
		}
	}
	if ok, _ := f.db.PromoteDueKey(ctx, time.Hour); ok {
		t.Fatal("promoted again with no next key")
	}
	testAlgorithmSwitch(t, f)
}

// testAlgorithmSwitch: a next default of another algorithm takes over the
// default; the old default's key retires, unless a client pins its
// algorithm, in which case it keeps signing for that client.
func testAlgorithmSwitch(t *testing.T, f fixture) {
	nextKey := func(id, alg string, isDefault bool) {
		k := &storage.SigningKey{ID: id, Algorithm: alg, PrivateSealed: []byte("p"), PublicJWK: "{}", State: storage.KeyNext,
			Default: isDefault, ActivateAfter: sql.NullTime{Time: f.clock.Now(), Valid: true}}
		if err := f.db.CreateSigningKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		if ok, err := f.db.PromoteDueKey(ctx, time.Hour); !ok || err != nil {
			t.Fatalf("promote %s: %v, %v", id, ok, err)
		}
	}
	next := func(id, alg string) { nextKey(id, alg, true) }
	state := func() map[string]string {
		out := map[string]string{}
		keys, _ := f.db.ListSigningKeys(ctx)
		for _, k := range keys {
			out[k.ID] = k.State
			if k.Default {
				out[k.ID] += "+default"
			}
		}
		return out
	}
	next("es", "ES256") // nobody pins RS256: the RS256 key retires
	if s := state(); s["new"] != storage.KeyRetired || s["es"] != "active+default" {
		t.Fatalf("after the switch to ES256 with no pin: %v", s)
	}
	c := mustClient(t, f.db, "legacy")
	if _, err := f.db.UpdateClient(ctx, c.ID, func(c *storage.Client) error { c.SigningAlg = "ES256"; return nil }); err != nil {
		t.Fatal(err)
	}
	next("ed", "EdDSA") // a client pins ES256: that key keeps signing, not as the default
	if s := state(); s["es"] != storage.KeyActive || s["ed"] != "active+default" {
		t.Fatalf("after the switch to EdDSA with ES256 pinned: %v", s)
	}
	if got, _ := f.db.PinnedAlgorithms(ctx); len(got) != 1 || got[0] != "ES256" {
		t.Fatalf("pinned algorithms = %v, want [ES256]", got)
	}
	nextKey("es2", "ES256", false) // the pinned clients' key is replaced; the default stays
	if s := state(); s["es"] != storage.KeyRetired || s["es2"] != storage.KeyActive || s["ed"] != "active+default" {
		t.Fatalf("after rotating the pinned ES256 key: %v", s)
	}
	nextKey("ed2", "EdDSA", false) // replacing the default's key keeps a default
	if s := state(); s["ed"] != storage.KeyRetired || s["ed2"] != "active+default" {
		t.Fatalf("after a non-default key replaced the default's: %v", s)
	}
}

func testEnrollmentLinks(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "alice")
	first := &storage.EnrollmentLink{ID: "l1", TokenHash: []byte("t1"), UserID: u.ID, ExpiresAt: f.clock.Now().Add(time.Hour)}
	if err := f.db.CreateEnrollmentLink(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := &storage.EnrollmentLink{ID: "l2", TokenHash: []byte("t2"), UserID: u.ID, ExpiresAt: f.clock.Now().Add(time.Hour)}
	f.db.CreateEnrollmentLink(ctx, second)
	if got, _ := f.db.EnrollmentLinkByToken(ctx, []byte("t1")); !got.UsedAt.Valid {
		t.Fatal("a new link left the earlier one usable")
	}
	if err := f.db.ClaimEnrollmentLink(ctx, "l1", []byte("b"), []byte("s")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("claiming a superseded link: %v", err)
	}
	if err := f.db.ClaimEnrollmentLink(ctx, "l2", []byte("browser"), []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	if err := f.db.ClaimEnrollmentLink(ctx, "l2", []byte("other"), []byte("x")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second claim: %v", err)
	}
	got, _ := f.db.EnrollmentLinkByToken(ctx, []byte("t2"))
	if string(got.BindingHash) != "browser" || string(got.SecretSealed) != "sealed" {
		t.Fatalf("claimed link: %+v", got)
	}
	if err := f.db.UseEnrollmentLink(ctx, "l2"); err != nil {
		t.Fatal(err)
	}
	if err := f.db.UseEnrollmentLink(ctx, "l2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("using twice: %v", err)
	}
}

func testDeleteExpired(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "alice")
	mustClient(t, f.db, "app")
	for _, id := range []string{"old1", "old2", "old3"} {
		mustAccess(t, f, id, u.ID, "", "")
	}
	mustRefresh(t, f, "r-old", "f", u.ID, "")
	mustSession(t, f, u.ID)
	mustAuthRequest(t, f, "app")
	f.db.ReserveAttempt(ctx, f.clock.Now().Add(-time.Hour), []storage.Claim{{Subject: "user:x", LockFor: func(int) time.Duration { return 0 }}})
	bob := mustUser(t, f.db, "bob")
	f.db.SetPendingTOTP(ctx, u.ID, []byte("sealed"), f.clock.Now().Add(10*time.Minute))
	f.clock.Advance(20 * time.Minute)
	mustAccess(t, f, "fresh", u.ID, "", "")
	f.db.SetPendingTOTP(ctx, bob.ID, []byte("sealed"), f.clock.Now().Add(10*time.Minute))
	r := storage.Retention{SessionIdle: 15 * time.Minute, FailureMemory: 10 * time.Minute, AuthRequestAge: 5 * time.Minute}

	n, err := f.db.DeleteExpired(ctx, r, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n["access_tokens"] != 2 || n["sessions"] != 1 || n["auth_requests"] != 1 || n["failed_attempts"] != 1 || n["pending_totp"] != 1 {
		t.Fatalf("first pass (limit 2) deleted %v", n)
	}
	if _, err := f.db.PendingTOTP(ctx, bob.ID); err != nil {
		t.Fatalf("an unexpired pending TOTP secret was deleted: %v", err)
	}
	n, _ = f.db.DeleteExpired(ctx, r, 2)
	if n["access_tokens"] != 1 {
		t.Fatalf("second pass deleted %v, want the third expired access token", n)
	}
	if _, err := f.db.GetAccessToken(ctx, "fresh"); err != nil {
		t.Fatal("an unexpired access token was deleted")
	}
	if _, err := f.db.GetRefreshToken(ctx, "r-old"); err != nil {
		t.Fatal("an unexpired refresh token was deleted")
	}
	f.db.RevokeFamily(ctx, "f")
	if n, _ = f.db.DeleteExpired(ctx, r, 10); n["refresh_tokens"] != 1 {
		t.Fatalf("revoked refresh token not deleted: %v", n)
	}
}

func testDeleteClient(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "alice")
	mustClient(t, f.db, "app")
	mustAccess(t, f, "a1", u.ID, "", "")
	f.db.SaveConsent(ctx, u.ID, "app", []string{"openid"})
	if err := f.db.DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.GetAccessToken(ctx, "a1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the removed client's token survived: %v", err)
	}
	if _, err := f.db.GetConsent(ctx, u.ID, "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the removed client's consent survived: %v", err)
	}
	if err := f.db.DeleteClient(ctx, "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
}
