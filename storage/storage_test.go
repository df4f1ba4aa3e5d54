package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stile-id/stile/internal/clocktest"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

// fixture is one migrated database of one dialect and its clock.
type fixture struct {
	db    *storage.DB
	clock *clocktest.Clock
	fresh func() string // the URL of another new, empty database
}

// TestStore runs the whole store suite on SQLite and on PostgreSQL.
func TestStore(t *testing.T) {
	tests := []struct {
		name string
		fn   func(*testing.T, fixture)
	}{
		{"Users", testUsers},
		{"UserValidation", testUserValidation},
		{"TOTP", testTOTP},
		{"TOTPConcurrentStep", testTOTPConcurrentStep},
		{"Clients", testClients},
		{"ClientValidation", testClientValidation},
		{"AuthRequestBinding", testAuthRequestBinding},
		{"AuthRequestLifecycle", testAuthRequestLifecycle},
		{"CodeRedeemedOnce", testCodeRedeemedOnce},
		{"LoginTransaction", testLoginTransaction},
		{"AccessTokens", testAccessTokens},
		{"SigningKeys", testSigningKeys},
		{"FailedAttempts", testFailedAttempts},
		{"RateLimits", testRateLimits},
		{"Meta", testMeta},
		{"MigrateConcurrently", testMigrateConcurrently},
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStoreFixture(t, d)) })
			}
		})
	}
}

// newStoreFixture migrates a new database of the dialect, on a stopped clock.
func newStoreFixture(t *testing.T, d storagetest.Dialect) fixture {
	clock := clocktest.New(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	db := storagetest.Open(t, d.URL(t), storage.WithClock(clock.Now))
	return fixture{db: db, clock: clock, fresh: func() string { return d.URL(t) }}
}

var ctx = context.Background()

func mustUser(t *testing.T, db *storage.DB, name string) *storage.User {
	t.Helper()
	u := &storage.User{Username: name, Email: name + "@example.com", PasswordHash: "h", Roles: storage.Strings{"editor"},
		Attributes: storage.Attributes{"team": "blue"}}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u
}

func mustClient(t *testing.T, db *storage.DB, id string) *storage.Client {
	t.Helper()
	c := &storage.Client{ID: id, Type: storage.ClientWeb, AuthMethod: storage.AuthSecretBasic, SecretHash: []byte("digest"),
		RedirectURIs: storage.Strings{"https://app.example.com/cb"}, RequirePKCE: true}
	if err := db.CreateClient(ctx, c); err != nil {
		t.Fatalf("create client: %v", err)
	}
	return c
}

func mustAuthRequest(t *testing.T, f fixture, clientID string) *storage.AuthRequest {
	t.Helper()
	a := &storage.AuthRequest{ID: "ar-" + clientID + "-" + time.Now().Format("150405.000000000"), ClientID: clientID,
		RedirectURI: "https://app.example.com/cb", Scopes: storage.Strings{"openid"}, ResponseType: "code",
		ExpiresAt: f.clock.Now().Add(10 * time.Minute)}
	if err := f.db.CreateAuthRequest(ctx, a); err != nil {
		t.Fatalf("create auth request: %v", err)
	}
	return a
}

// mustSession opens an SSO session for the user, signed in now with both factors.
func mustSession(t *testing.T, f fixture, userID string) *storage.Session {
	t.Helper()
	s := &storage.Session{ID: "s-" + time.Now().Format("150405.000000000"), CookieHash: []byte(time.Now().String()),
		UserID: userID, AuthTime: f.clock.Now(), AMR: storage.Strings{"pwd", "otp", "mfa"}, ExpiresAt: f.clock.Now().Add(12 * time.Hour)}
	if err := f.db.CreateSession(ctx, s); err != nil {
		t.Fatalf("create session: %v", err)
	}
	return s
}

func testUsers(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "Alice")
	if u.ID == "" || u.CreatedAt.IsZero() {
		t.Fatalf("CreateUser did not fill ID and CreatedAt: %+v", u)
	}
	got, err := f.db.GetUserByUsername(ctx, "ALICE")
	if err != nil {
		t.Fatalf("lookup ignoring case: %v", err)
	}
	if got.ID != u.ID || got.Username != "Alice" || !got.Roles.Contains("editor") || got.Attributes["team"] != "blue" {
		t.Fatalf("read back %+v, want %+v", got, u)
	}
	if !got.CreatedAt.Equal(f.clock.Now()) {
		t.Fatalf("created_at = %v, want the injected clock's %v", got.CreatedAt, f.clock.Now())
	}
	err = f.db.CreateUser(ctx, &storage.User{Username: "aLiCe"})
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("same name in other case: err = %v, want ErrConflict", err)
	}
	if _, err := f.db.GetUserByUsername(ctx, "bob"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown user: err = %v, want ErrNotFound", err)
	}
	f.clock.Advance(time.Minute)
	upd, err := f.db.UpdateUser(ctx, u.ID, func(u *storage.User) error {
		u.Disabled = true
		u.Roles = append(u.Roles, "admin")
		return nil
	})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	got, _ = f.db.GetUser(ctx, u.ID)
	if !got.Disabled || !got.Roles.Contains("admin") || !got.UpdatedAt.Equal(upd.UpdatedAt) || got.UpdatedAt.Equal(got.CreatedAt) {
		t.Fatalf("after update: %+v", got)
	}
	list, err := f.db.ListUsers(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list = %v, %v", list, err)
	}
}

func testUserValidation(t *testing.T, f fixture) {
	big := storage.Attributes{"blob": string(make([]byte, storage.MaxAttributesSize))}
	for name, u := range map[string]*storage.User{
		"empty name":       {Username: " "},
		"space in name":    {Username: "a b"},
		"colon in name":    {Username: "a:b"},
		"empty role":       {Username: "ok", Roles: storage.Strings{""}},
		"attributes cap":   {Username: "ok2", Attributes: big},
		"name over 128 ch": {Username: string(make([]rune, 129))},
	} {
		if err := f.db.CreateUser(ctx, u); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if err := f.db.CreateUser(ctx, &storage.User{Username: "fine"}); err != nil {
		t.Fatalf("positive control: %v", err)
	}
}

func testTOTP(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "alice")
	if _, err := f.db.GetTOTP(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("no enrolment yet: err = %v", err)
	}
	if err := f.db.SetTOTP(ctx, u.ID, []byte("sealed-1")); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		n    int64
		want bool
	}{{100, true}, {100, false}, {99, false}, {101, true}} {
		ok, err := f.db.AcceptTOTPStep(ctx, u.ID, step.n)
		if err != nil || ok != step.want {
			t.Fatalf("accept step %d = %v, %v; want %v", step.n, ok, err, step.want)
		}
	}
	// Re-enrolling replaces the secret and forgets the steps.
	if err := f.db.SetTOTP(ctx, u.ID, []byte("sealed-2")); err != nil {
		t.Fatal(err)
	}
	got, err := f.db.GetTOTP(ctx, u.ID)
	if err != nil || string(got.SecretSealed) != "sealed-2" || got.LastStep != 0 {
		t.Fatalf("after re-enrol: %+v, %v", got, err)
	}
}

func testTOTPConcurrentStep(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "alice")
	if err := f.db.SetTOTP(ctx, u.ID, []byte("s")); err != nil {
		t.Fatal(err)
	}
	if wins := countWins(t, 8, func() (bool, error) { return f.db.AcceptTOTPStep(ctx, u.ID, 500) }); wins != 1 {
		t.Fatalf("%d goroutines accepted the same step, want exactly 1", wins)
	}
}

// countWins runs fn from n goroutines at once and counts the true results.
func countWins(t *testing.T, n int, fn func() (bool, error)) int {
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ok, err := fn()
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	return int(wins.Load())
}

func testClients(t *testing.T, f fixture) {
	c := mustClient(t, f.db, "app")
	got, err := f.db.GetClient(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessTokenFormat != storage.TokenFormatJWT || !got.GrantTypes.Contains(storage.GrantAuthorizationCode) || string(got.SecretHash) != "digest" {
		t.Fatalf("defaults not applied: %+v", got)
	}
	if err := f.db.CreateClient(ctx, c); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("duplicate: err = %v, want ErrConflict", err)
	}
	_, err = f.db.UpdateClient(ctx, "app", func(c *storage.Client) error {
		c.AccessTokenLifetime = storage.Seconds(5 * time.Minute)
		c.Audiences = storage.Strings{"https://api.example.com"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = f.db.GetClient(ctx, "app")
	if time.Duration(got.AccessTokenLifetime) != 5*time.Minute || !got.Audiences.Contains("https://api.example.com") {
		t.Fatalf("after update: %+v", got)
	}
	_, err = f.db.UpdateClient(ctx, "app", func(c *storage.Client) error {
		c.FirstParty, c.FirstPartyApp, c.Passwordless, c.Signup = true, true, true, true
		c.SignupRoles, c.SignupAttributes = storage.Strings{"member"}, storage.Attributes{"plan": "free"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = f.db.GetClient(ctx, "app")
	if !got.FirstPartyApp || !got.Passwordless || !got.Signup || !got.SignupRoles.Contains("member") || got.SignupAttributes["plan"] != "free" {
		t.Fatalf("the sign-in switches after update: %+v", got)
	}
	_, err = f.db.UpdateClient(ctx, "app", func(c *storage.Client) error { c.FirstParty = false; return nil })
	if !errors.Is(err, storage.ErrInvalid) || !strings.Contains(err.Error(), "first_party_app") {
		t.Fatalf("a third-party client with the challenge endpoint: err = %v, want ErrInvalid naming first_party_app", err)
	}
	_, err = f.db.UpdateClient(ctx, "app", func(c *storage.Client) error { c.SignupAttributes = storage.Attributes{"": 1}; return nil })
	if !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("a sign-up attribute with an empty key: err = %v, want ErrInvalid", err)
	}
	if _, err := f.db.GetClient(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown client: %v", err)
	}
}

func testClientValidation(t *testing.T, f fixture) {
	base := func() *storage.Client {
		return &storage.Client{ID: "c", Type: storage.ClientSPA, AuthMethod: storage.AuthNone, RequirePKCE: true,
			RedirectURIs: storage.Strings{"https://spa.example.com/cb"}}
	}
	for name, mutate := range map[string]func(*storage.Client){
		"public with secret method": func(c *storage.Client) { c.AuthMethod = storage.AuthSecretBasic },
		"public without PKCE":       func(c *storage.Client) { c.RequirePKCE = false },
		"web without secret":        func(c *storage.Client) { c.Type, c.AuthMethod = storage.ClientWeb, storage.AuthSecretBasic },
		"unknown type":              func(c *storage.Client) { c.Type = "robot" },
		"no redirect URI":           func(c *storage.Client) { c.RedirectURIs = nil },
		"relative redirect URI":     func(c *storage.Client) { c.RedirectURIs = storage.Strings{"/cb"} },
		"fragment in redirect URI":  func(c *storage.Client) { c.RedirectURIs = storage.Strings{"https://a/cb#x"} },
		"origin with a path":        func(c *storage.Client) { c.WebOrigins = storage.Strings{"https://a.example.com/app"} },
		"SPA on plain http":         func(c *storage.Client) { c.RedirectURIs = storage.Strings{"http://spa.example.com/cb"} },
		"bad token format":          func(c *storage.Client) { c.AccessTokenFormat = "paseto" },
		"unsupported grant":         func(c *storage.Client) { c.GrantTypes = storage.Strings{"password"} },
		"bad client ID":             func(c *storage.Client) { c.ID = "has space" },
	} {
		c := base()
		mutate(c)
		if err := f.db.CreateClient(ctx, c); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if err := f.db.CreateClient(ctx, base()); err != nil {
		t.Fatalf("positive control: %v", err)
	}
	dev := base()
	dev.ID, dev.RedirectURIs = "dev", storage.Strings{"http://127.0.0.1:5173/cb", "http://localhost:3000/cb"}
	if err := f.db.CreateClient(ctx, dev); err != nil {
		t.Fatalf("SPA on loopback http: %v", err)
	}
}

func testAuthRequestBinding(t *testing.T, f fixture) {
	mustClient(t, f.db, "app")
	a := mustAuthRequest(t, f, "app")
	bound, err := f.db.BindAuthRequest(ctx, a.ID, []byte("browser-1"))
	if err != nil || string(bound) != "browser-1" {
		t.Fatalf("first bind = %q, %v", bound, err)
	}
	bound, err = f.db.BindAuthRequest(ctx, a.ID, []byte("browser-2"))
	if err != nil || string(bound) != "browser-1" {
		t.Fatalf("second browser rebound the request: %q, %v", bound, err)
	}
	if _, err := f.db.BindAuthRequest(ctx, "missing", []byte("x")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown request: %v", err)
	}
}

func testAuthRequestLifecycle(t *testing.T, f fixture) {
	mustClient(t, f.db, "app")
	u := mustUser(t, f.db, "alice")
	a := mustAuthRequest(t, f, "app")
	if err := f.db.ClaimCallback(ctx, a.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("callback before the login finished: %v", err)
	}
	authTime := f.clock.Now()
	sess := mustSession(t, f, u.ID)
	if err := f.db.CompleteAuthRequest(ctx, a.ID, sess); err != nil {
		t.Fatal(err)
	}
	if err := f.db.CompleteAuthRequest(ctx, a.ID, sess); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("completing twice: %v", err)
	}
	got, _ := f.db.GetAuthRequest(ctx, a.ID)
	if !got.Done || got.UserID.String != u.ID || !got.AuthTime.Time.Equal(authTime) || len(got.AMR) != 3 || got.SessionID.String != sess.ID {
		t.Fatalf("after complete: %+v", got)
	}
	if err := f.db.ClaimCallback(ctx, a.ID); err != nil {
		t.Fatalf("first callback: %v", err)
	}
	if err := f.db.ClaimCallback(ctx, a.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second callback: %v", err)
	}

	b := mustAuthRequest(t, f, "app")
	if err := f.db.FailAuthRequest(ctx, b.ID, "login_required"); err != nil {
		t.Fatal(err)
	}
	if err := f.db.CompleteAuthRequest(ctx, b.ID, sess); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("completing a failed request: %v", err)
	}
	if err := f.db.ClaimCallback(ctx, b.ID); err != nil {
		t.Fatalf("a failed request's callback answers once too: %v", err)
	}
}

func testCodeRedeemedOnce(t *testing.T, f fixture) {
	mustClient(t, f.db, "app")
	u := mustUser(t, f.db, "alice")
	a := mustAuthRequest(t, f, "app")
	if err := f.db.SaveCode(ctx, a.ID, []byte("h1"), f.clock.Now().Add(time.Minute)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("code for an unfinished login: %v", err)
	}
	sess := mustSession(t, f, u.ID)
	if err := f.db.CompleteAuthRequest(ctx, a.ID, sess); err != nil {
		t.Fatal(err)
	}
	if err := f.db.SaveCode(ctx, a.ID, []byte("h1"), f.clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var wins, reuses atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := f.db.RedeemCode(ctx, []byte("h1"))
			switch {
			case err == nil && got.ID == a.ID:
				wins.Add(1)
			case errors.Is(err, storage.ErrCodeReused) && got.ID == a.ID:
				reuses.Add(1)
			default:
				t.Errorf("redeem: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || reuses.Load() != 7 {
		t.Fatalf("wins=%d reuses=%d, want 1 and 7", wins.Load(), reuses.Load())
	}
	if _, err := f.db.RedeemCode(ctx, []byte("unknown")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}

	b := mustAuthRequest(t, f, "app")
	f.db.CompleteAuthRequest(ctx, b.ID, sess)
	f.db.SaveCode(ctx, b.ID, []byte("h2"), f.clock.Now().Add(time.Minute))
	f.clock.Advance(61 * time.Second)
	if _, err := f.db.RedeemCode(ctx, []byte("h2")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("expired code: %v", err)
	}
}

func testLoginTransaction(t *testing.T, f fixture) {
	mustClient(t, f.db, "app")
	u := mustUser(t, f.db, "alice")
	a := mustAuthRequest(t, f, "app")
	tx := &storage.LoginTransaction{ID: "tx1", AuthRequestID: sql.NullString{String: a.ID, Valid: true}, ClientID: "app", Door: storage.DoorPages,
		UserID: u.ID, Method: "TOTP", ExpiresAt: f.clock.Now().Add(5 * time.Minute)}
	if err := f.db.CreateLoginTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		got, err := wrongCode(t, f, "tx1", 3)
		if err != nil {
			t.Fatal(err)
		}
		want := storage.TxOTP
		if i == 3 {
			want = storage.TxDead
		}
		if got.OTPFailures != i || got.State != want {
			t.Fatalf("after %d failures: %+v", i, got)
		}
	}
	if err := f.db.FinishLoginTransaction(ctx, "tx1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("finishing a dead transaction: %v", err)
	}
	tx2 := &storage.LoginTransaction{ID: "tx2", ClientID: "app", Door: storage.DoorDirect, UserID: u.ID, Method: "TOTP", ExpiresAt: f.clock.Now().Add(time.Minute)}
	if err := f.db.CreateLoginTransaction(ctx, tx2); err != nil {
		t.Fatal(err)
	}
	if err := f.db.FinishLoginTransaction(ctx, "tx2"); err != nil {
		t.Fatalf("positive control: %v", err)
	}
	if err := f.db.FinishLoginTransaction(ctx, "tx2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("finishing twice: %v", err)
	}
}

func testAccessTokens(t *testing.T, f fixture) {
	mustClient(t, f.db, "app")
	u := mustUser(t, f.db, "alice")
	ar := sql.NullString{String: "ar1", Valid: true}
	for _, id := range []string{"t1", "t2"} {
		tok := &storage.AccessToken{ID: id, ClientID: "app", UserID: u.ID, AuthRequestID: ar,
			Scopes: storage.Strings{"openid"}, Audience: storage.Strings{"app"}, ExpiresAt: f.clock.Now().Add(10 * time.Minute)}
		if err := f.db.CreateAccessToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.db.GetAccessToken(ctx, "t1")
	if err != nil || !got.Active(f.clock.Now()) {
		t.Fatalf("fresh token: %+v, %v", got, err)
	}
	if got.Active(f.clock.Now().Add(11 * time.Minute)) {
		t.Fatal("token active after its expiry")
	}
	if err := f.db.RevokeAccessToken(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	got, _ = f.db.GetAccessToken(ctx, "t1")
	if got.Active(f.clock.Now()) {
		t.Fatal("revoked token still active")
	}
	n, err := f.db.RevokeAuthRequestTokens(ctx, "ar1")
	if err != nil || n != 1 {
		t.Fatalf("revoke by auth request: n=%d err=%v, want the one still active", n, err)
	}
}

func testSigningKeys(t *testing.T, f fixture) {
	if _, err := f.db.ActiveSigningKey(ctx); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("no key yet: %v", err)
	}
	k1 := &storage.SigningKey{ID: "k1", Algorithm: "RS256", PrivateSealed: []byte("p"), PublicJWK: "{}", State: storage.KeyActive, Default: true}
	if err := f.db.CreateSigningKey(ctx, k1); err != nil {
		t.Fatal(err)
	}
	k2 := &storage.SigningKey{ID: "k2", Algorithm: "RS256", PrivateSealed: []byte("p"), PublicJWK: "{}", State: storage.KeyActive}
	if err := f.db.CreateSigningKey(ctx, k2); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("second active key: err = %v, want ErrConflict", err)
	}
	k2.State = storage.KeyNext
	if err := f.db.CreateSigningKey(ctx, k2); err != nil {
		t.Fatalf("a next key beside the active one: %v", err)
	}
	k3 := &storage.SigningKey{ID: "k3", Algorithm: "RS256", PrivateSealed: []byte("p"), PublicJWK: "{}", State: storage.KeyNext}
	if err := f.db.CreateSigningKey(ctx, k3); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("second next key of one algorithm: err = %v, want ErrConflict", err)
	}
	es := &storage.SigningKey{ID: "es", Algorithm: "ES256", PrivateSealed: []byte("p"), PublicJWK: "{}", State: storage.KeyActive, Default: true}
	if err := f.db.CreateSigningKey(ctx, es); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("a second active default: err = %v, want ErrConflict", err)
	}
	es.Default = false
	if err := f.db.CreateSigningKey(ctx, es); err != nil {
		t.Fatalf("an active key of another algorithm beside the default: %v", err)
	}
	got, err := f.db.ActiveSigningKey(ctx)
	if err != nil || got.ID != "k1" || !got.ActivatedAt.Valid {
		t.Fatalf("active = %+v, %v", got, err)
	}
	all, _ := f.db.ListSigningKeys(ctx)
	if len(all) != 3 {
		t.Fatalf("list = %d keys, want 3", len(all))
	}
}

func testFailedAttempts(t *testing.T, f fixture) {
	lockAt3 := func(n int) time.Duration {
		if n >= 3 {
			return time.Minute
		}
		return 0
	}
	forget := func() time.Time { return f.clock.Now().Add(-time.Hour) }
	got, err := f.db.GetFailedAttempts(ctx, "user:1")
	if err != nil || got.Failures != 0 || got.LockedUntil.Valid {
		t.Fatalf("no failures yet: %+v, %v", got, err)
	}
	claim := []storage.Claim{{Subject: "user:1", LockFor: lockAt3}}
	for i := 1; i <= 3; i++ {
		r, err := f.db.ReserveAttempt(ctx, forget(), claim)
		if err != nil || !r.Allowed || r.Failures["user:1"] != i {
			t.Fatalf("failure %d: %+v, %v", i, r, err)
		}
	}
	got, _ = f.db.GetFailedAttempts(ctx, "user:1")
	if !got.LockedUntil.Valid || !got.LockedUntil.Time.Equal(f.clock.Now().Add(time.Minute)) {
		t.Fatalf("locked_until = %v, want now+1m", got.LockedUntil)
	}
	if r, err := f.db.ReserveAttempt(ctx, forget(), claim); err != nil || r.Allowed || r.RetryAfter != time.Minute {
		t.Fatalf("while locked: %+v, %v; want refused for a minute", r, err)
	}
	// Failures older than the forget window start the count over.
	f.clock.Advance(2 * time.Hour)
	r, _ := f.db.ReserveAttempt(ctx, forget(), claim)
	got, _ = f.db.GetFailedAttempts(ctx, "user:1")
	if !r.Allowed || got.Failures != 1 || got.LockedUntil.Valid {
		t.Fatalf("after the window: %+v", got)
	}
	if err := f.db.ClearFailures(ctx, "user:1"); err != nil {
		t.Fatal(err)
	}
	got, _ = f.db.GetFailedAttempts(ctx, "user:1")
	if got.Failures != 0 {
		t.Fatalf("after clear: %+v", got)
	}
}

func testMeta(t *testing.T, f fixture) {
	if _, err := f.db.GetMeta(ctx, "kcv"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unset: %v", err)
	}
	if err := f.db.InsertMeta(ctx, "kcv", []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := f.db.InsertMeta(ctx, "kcv", []byte{3}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("second insert: %v", err)
	}
	v, err := f.db.GetMeta(ctx, "kcv")
	if err != nil || len(v) != 2 || v[0] != 1 {
		t.Fatalf("read back %v, %v", v, err)
	}
}

// testMigrateConcurrently starts several "instances" migrating one new
// database at once: the lock makes each migration run once and every start
// succeed.
func testMigrateConcurrently(t *testing.T, f fixture) {
	url := f.fresh()
	const instances = 6
	dbs := make([]*storage.DB, instances)
	for i := range dbs {
		db, err := storage.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, db := range dbs {
		wg.Go(func() {
			<-start
			if err := db.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
				t.Errorf("concurrent migrate: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if err := dbs[0].CreateUser(ctx, &storage.User{Username: "after"}); err != nil {
		t.Fatalf("schema usable after concurrent migration: %v", err)
	}
}
