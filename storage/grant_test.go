package storage_test

import (
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestGrants covers the store's part of issue 9's token rules and cleanup,
// on SQLite and on PostgreSQL.
func TestGrants(t *testing.T) {
	tests := []struct {
		name string
		fn   func(*testing.T, fixture)
	}{
		{"CodeReplayRevokesGrant", testCodeReplayRevokesGrant},
		{"ConcurrentRetriesShareOneSuccessor", testConcurrentRetriesShareOneSuccessor},
		{"SweepKeepsUp", testSweepKeepsUp},
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStoreFixture(t, d)) })
			}
		})
	}
}

// testCodeReplayRevokesGrant: revoking an authorization request's grant
// revokes its access tokens, every family started from it (rotated links
// too) and their access tokens; another grant of the same user stays.
func testCodeReplayRevokesGrant(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "alice")
	mustClient(t, f.db, "app")
	grantWithRequest(t, f, u.ID, "ar1", "fam1")
	grantWithRequest(t, f, u.ID, "ar2", "fam2")

	n, err := f.db.RevokeAuthRequestTokens(ctx, "ar1")
	if err != nil || n != 4 {
		t.Fatalf("revoke grant: %d tokens, %v; want 2 refresh and 2 access tokens", n, err)
	}
	for _, id := range []string{"fam1-1", "fam1-2"} {
		if r, _ := f.db.GetRefreshToken(ctx, id); !r.RevokedAt.Valid {
			t.Errorf("refresh token %s of the replayed grant is not revoked", id)
		}
	}
	if !revoked(t, f, "ar1-code") || !revoked(t, f, "fam1-refreshed") {
		t.Error("an access token of the replayed grant is still active")
	}
	// The positive control: the other grant is untouched.
	if r, _ := f.db.GetRefreshToken(ctx, "fam2-2"); !r.Usable(f.clock.Now()) {
		t.Error("the live refresh token of another grant was revoked")
	}
	if revoked(t, f, "ar2-code") || revoked(t, f, "fam2-refreshed") {
		t.Error("an access token of another grant was revoked")
	}
}

// grantWithRequest stores what one code exchange and one refresh leave: a
// family started from auth request ar whose first link was rotated into
// the second, the exchange's access token and the refresh's.
func grantWithRequest(t *testing.T, f fixture, userID, ar, family string) {
	t.Helper()
	link := func(id string) *storage.RefreshToken {
		return &storage.RefreshToken{ID: id, TokenHash: []byte("hash-" + id), FamilyID: family, ClientID: "app", UserID: userID,
			AuthTime: f.clock.Now(), ExpiresAt: f.clock.Now().Add(time.Hour), FamilyExpiresAt: f.clock.Now().Add(24 * time.Hour),
			AuthRequestID: sql.NullString{String: ar, Valid: true}}
	}
	if err := f.db.CreateRefreshToken(ctx, link(family+"-1")); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.db.RotateRefreshToken(ctx, family+"-1", 0, link(family+"-2")); !ok || err != nil {
		t.Fatalf("rotate: %v %v", ok, err)
	}
	a := &storage.AccessToken{ID: ar + "-code", ClientID: "app", UserID: userID, ExpiresAt: f.clock.Now().Add(time.Hour),
		AuthRequestID: sql.NullString{String: ar, Valid: true}, FamilyID: sql.NullString{String: family, Valid: true}}
	if err := f.db.CreateAccessToken(ctx, a); err != nil {
		t.Fatal(err)
	}
	mustAccess(t, f, family+"-refreshed", userID, family, "")
}

// testConcurrentRetriesShareOneSuccessor: many uses of one token inside
// the grace window, at once, all rotate it to the one successor they all
// derived; the family ends with exactly one live link. After the window a
// use is refused.
func testConcurrentRetriesShareOneSuccessor(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "alice")
	mustClient(t, f.db, "app")
	mustRefresh(t, f, "r1", "fam", u.ID, "")
	const racers = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range racers {
		wg.Go(func() {
			ok, err := f.db.RotateRefreshToken(ctx, "r1", 2*time.Second, successor(f, u.ID, "r1"))
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				wins++
			}
		})
	}
	wg.Wait()
	if wins != racers {
		t.Fatalf("%d of %d uses inside the grace window rotated, want all", wins, racers)
	}
	family, err := f.db.RefreshFamily(ctx, "fam")
	if err != nil {
		t.Fatal(err)
	}
	var live []string
	for _, r := range family {
		if !r.RotatedAt.Valid && r.Usable(f.clock.Now()) {
			live = append(live, r.ID)
		}
	}
	if len(family) != 2 || len(live) != 1 || live[0] != "r1-next" {
		t.Fatalf("family after concurrent retries: %d links, live %v; want r1 and its one successor", len(family), live)
	}
	f.clock.Advance(3 * time.Second)
	if ok, _ := f.db.RotateRefreshToken(ctx, "r1", 2*time.Second, successor(f, u.ID, "r1")); ok {
		t.Fatal("a use after the grace window rotated")
	}
}

// testSweepKeepsUp: one sweep deletes a flood of expired authorization
// requests in batches, not one batch a pass; requests that issued a code
// stay for reuse detection, unexpired ones stay.
func testSweepKeepsUp(t *testing.T, f fixture) {
	mustClient(t, f.db, "app")
	const flood = 5000
	expired := f.clock.Now().Add(time.Minute)
	for i := range flood {
		a := &storage.AuthRequest{ID: fmt.Sprintf("flood-%05d", i), ClientID: "app", RedirectURI: "https://app.example.com/cb",
			ResponseType: "code", ExpiresAt: expired}
		if err := f.db.CreateAuthRequest(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	withCode := mustAuthRequest(t, f, "app")
	session := mustSession(t, f, mustUser(t, f.db, "alice").ID)
	if err := f.db.CompleteAuthRequest(ctx, withCode.ID, session); err != nil {
		t.Fatal(err)
	}
	if err := f.db.SaveCode(ctx, withCode.ID, []byte("code"), f.clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(11 * time.Minute)
	fresh := mustAuthRequest(t, f, "app")
	before, err := f.db.CountRows(ctx)
	if err != nil || before["auth_requests"] != flood+2 {
		t.Fatalf("rows before the sweep: %v %v", before, err)
	}
	r := storage.Retention{SessionIdle: time.Hour, FailureMemory: time.Hour, AuthRequestAge: time.Hour}
	deleted, done, err := f.db.Sweep(ctx, r, 1000, time.Now().Add(time.Minute))
	if err != nil || !done || deleted["auth_requests"] < flood {
		t.Fatalf("sweep: deleted %v, done %v, %v; want all %d expired requests in one pass", deleted, done, err, flood)
	}
	if _, err := f.db.GetAuthRequest(ctx, fresh.ID); err != nil {
		t.Fatalf("an unexpired request was swept: %v", err)
	}
	if _, err := f.db.GetAuthRequest(ctx, withCode.ID); err != nil {
		t.Fatalf("a request that issued a code was swept at its expiry: %v", err)
	}
	after, _ := f.db.CountRows(ctx)
	if after["auth_requests"] != 2 {
		t.Fatalf("%d auth requests left, want the fresh one and the one with a code", after["auth_requests"])
	}
	// An hour later the code's request goes too.
	f.clock.Advance(time.Hour)
	if deleted, _, _ = f.db.Sweep(ctx, r, 1000, time.Now().Add(time.Minute)); deleted["auth_requests"] != 2 {
		t.Fatalf("second sweep deleted %v, want both remaining requests", deleted)
	}
}
