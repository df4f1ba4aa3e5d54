package account_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/internal/clocktest"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

var ctx = context.Background()

// tagHasher stands in for argon2id, which these tests do not exercise:
// it makes a hash that names its password, so a test sees which was set.
type tagHasher struct{}

func (tagHasher) Hash(pw string) (string, error) { return "tag:" + pw, nil }

type sealer struct{}

func (sealer) Seal(p, _ []byte) ([]byte, error) { return p, nil }
func (sealer) Open(s, _ []byte) ([]byte, error) { return s, nil }

type fixture struct {
	db    *storage.DB
	clock *clocktest.Clock
	svc   *account.Service
	sent  *[]string // subjects notified
}

var operator = account.Actor{Operator: "cli:test", Remote: "192.0.2.1"}

func TestService(t *testing.T) {
	tests := []struct {
		name string
		fn   func(*testing.T, fixture)
	}{
		{"Create", testCreate},
		{"Search", testSearch},
		{"SearchWhileInserting", testSearchWhileInserting},
		{"Update", testUpdate},
		{"UpdateConcurrentIfVersion", testUpdateConcurrent},
		{"RevokeOnChange", testRevokeOnChange},
		{"Factors", testFactors},
		{"Delete", testDelete},
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					clock := clocktest.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
					db := storagetest.Open(t, d.URL(t), storage.WithClock(clock.Now))
					var sent []string
					svc := account.New(account.Config{DB: db, Hasher: tagHasher{}, Sealer: sealer{},
						RecoveryKey: []byte("recovery-key"), Issuer: "https://id.example.com", IssuerLabel: "stile test",
						Notify: func(_ context.Context, u *storage.User, subject, _ string) {
							sent = append(sent, u.Username+": "+subject)
						}})
					tc.fn(t, fixture{db: db, clock: clock, svc: svc, sent: &sent})
				})
			}
		})
	}
}

func create(t *testing.T, f fixture, name string, roles ...string) *storage.User {
	t.Helper()
	c, err := f.svc.Create(ctx, operator, account.NewUser{Username: name, Email: name + "@example.com",
		Password: "correct horse battery", Roles: roles, Attributes: storage.Attributes{"team": "blue"}})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return c.User
}

func fieldOf(err error, kind error) string {
	var fe *account.FieldError
	if !errors.Is(err, kind) || !errors.As(err, &fe) {
		return fmt.Sprintf("not a %v field error: %v", kind, err)
	}
	return fe.Field
}

func events(t *testing.T, f fixture, typ string) []storage.Event {
	t.Helper()
	evs, err := f.db.ListEvents(ctx, storage.EventFilter{Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func testCreate(t *testing.T, f fixture) {
	u := create(t, f, "Alice")
	if u.PasswordHash != "tag:correct horse battery" || u.Version != 1 || u.ID == "" {
		t.Fatalf("created %+v", u)
	}
	for _, tc := range []struct {
		n     account.NewUser
		kind  error
		field string
	}{
		{account.NewUser{Username: "ALICE"}, account.ErrConflict, "username"},
		{account.NewUser{Username: "bob", Email: "ALICE@example.com"}, account.ErrConflict, "email"},
		{account.NewUser{Username: "bob", Email: "not an address"}, account.ErrInvalid, "email"},
		{account.NewUser{Username: "bob", Password: "short"}, account.ErrInvalid, "password"},
		{account.NewUser{Username: "b o b"}, account.ErrInvalid, "username"},
		{account.NewUser{Username: "bob", Phone: "12"}, account.ErrInvalid, "phone"},
		{account.NewUser{Username: "bob", Roles: []string{" "}}, account.ErrInvalid, "roles"},
		{account.NewUser{Username: "bob", Attributes: storage.Attributes{"x": strings.Repeat("a", 5000)}}, account.ErrInvalid, "attributes"},
		{account.NewUser{Username: "bob", Attributes: storage.Attributes{"": 1}}, account.ErrInvalid, "attributes"},
		{account.NewUser{Username: "bob", PasswordHash: "md5:5f4dcc3b5aa765d61d8327deb882cf99"}, account.ErrInvalid, "password_hash"},
		{account.NewUser{Username: "bob", PasswordHash: "$2b$31$" + strings.Repeat("a", 53)}, account.ErrInvalid, "password_hash"},
	} {
		_, err := f.svc.Create(ctx, operator, tc.n)
		if got := fieldOf(err, tc.kind); got != tc.field {
			t.Errorf("create %+v: field %q, want %q (%v)", tc.n.Username, got, tc.field, err)
		}
	}
	// A role is held or not: repeats are dropped.
	if c, err := f.svc.Create(ctx, operator, account.NewUser{Username: "rita", Roles: []string{"a", "b", "a"}, SkipEnrollLink: true}); err != nil ||
		strings.Join(c.User.Roles, ",") != "a,b" {
		t.Errorf("repeated roles: %v, %v", c, err)
	}
	// Without a password: an enrolment link on which the user chooses one.
	c, err := f.svc.Create(ctx, operator, account.NewUser{Username: "carol", Email: "carol@example.com"})
	if err != nil || !strings.HasPrefix(c.EnrollURL, "https://id.example.com/enroll?token=") ||
		!c.EnrollExpires.Equal(f.clock.Now().Add(account.DefaultEnrollmentLinkTTL)) {
		t.Fatalf("create without a password: %+v, %v", c, err)
	}
	// The trail: three successes, eleven refusals with their reason, by the operator, no secret.
	evs := events(t, f, "user.created")
	var ok, failed int
	for _, e := range evs {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), "correct horse") || strings.Contains(string(b), "token=") {
			t.Errorf("event holds a secret: %s", b)
		}
		if e.Actor != "cli:test" || e.Remote != "192.0.2.1" {
			t.Errorf("event actor: %s", b)
		}
		switch e.Outcome {
		case storage.Success:
			ok++
		case storage.Failure:
			failed++
			if e.Reason != "conflict" && e.Reason != "invalid" {
				t.Errorf("failure reason: %s", b)
			}
		}
	}
	if ok != 3 || failed != 11 {
		t.Errorf("user.created events: %d ok, %d failed; want 3 and 11", ok, failed)
	}
	for _, ref := range []string{"alice", u.ID} {
		if got, err := f.svc.Find(ctx, ref); err != nil || got.ID != u.ID {
			t.Errorf("find %q: %v, %v", ref, got, err)
		}
	}
	if got, err := f.svc.ByEmail(ctx, "ALICE@EXAMPLE.COM"); err != nil || got.ID != u.ID {
		t.Errorf("by email: %v, %v", got, err)
	}
	for _, bad := range []string{"nobody", "not-a-uuid"} {
		if _, err := f.svc.Find(ctx, bad); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("find %q: %v, want not found", bad, err)
		}
	}
	if _, err := f.svc.ByEmail(ctx, ""); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("by empty email: %v", err)
	}
}

func testSearch(t *testing.T, f fixture) {
	create(t, f, "ann", "editor")
	create(t, f, "anna", "admin", "editor")
	b := create(t, f, "bert")
	if _, err := f.svc.Update(ctx, operator, b.ID, account.Change{AttributesPatch: json.RawMessage(`{"seats":3,"pro":true}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Disable(ctx, operator, b.ID); err != nil {
		t.Fatal(err)
	}
	yes := true
	for _, tc := range []struct {
		f    account.Filter
		want string
	}{
		{account.Filter{}, "ann,anna,bert"},
		{account.Filter{UsernamePrefix: "AN"}, "ann,anna"},
		{account.Filter{EmailPrefix: "anna@"}, "anna"},
		{account.Filter{Role: "editor"}, "ann,anna"},
		{account.Filter{Role: "admin"}, "anna"},
		{account.Filter{Attribute: "team=blue"}, "ann,anna,bert"},
		{account.Filter{Attribute: "seats=3"}, "bert"},
		{account.Filter{Attribute: "pro=true"}, "bert"},
		{account.Filter{Attribute: "seats=4"}, ""},
		{account.Filter{Disabled: &yes}, "bert"},
		{account.Filter{UsernamePrefix: "a%"}, ""}, // LIKE wildcards are literal
	} {
		p, err := f.svc.Search(ctx, tc.f)
		if err != nil {
			t.Fatalf("search %+v: %v", tc.f, err)
		}
		if got := names(p.Users); got != tc.want || p.Next != "" {
			t.Errorf("search %+v = %q (next %q), want %q", tc.f, got, p.Next, tc.want)
		}
	}
	for _, bad := range []account.Filter{{Limit: 201}, {Limit: -1}, {Cursor: "!!"}, {Attribute: "novalue"}} {
		if _, err := f.svc.Search(ctx, bad); !errors.Is(err, account.ErrInvalid) {
			t.Errorf("search %+v: %v, want invalid", bad, err)
		}
	}
}

func names(us []storage.User) string {
	var n []string
	for _, u := range us {
		n = append(n, u.Username)
	}
	return strings.Join(n, ",")
}

// testSearchWhileInserting walks the pages while other writers add users:
// every user there from the start is seen exactly once, and no user twice.
func testSearchWhileInserting(t *testing.T, f fixture) {
	before := map[string]bool{}
	for i := range 60 {
		u := create(t, f, fmt.Sprintf("u%03d", i*5))
		before[u.ID] = true
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Names that sort before, between and after the walk's position.
				if _, err := f.svc.Create(ctx, operator, account.NewUser{Username: fmt.Sprintf("u%03d-%d-%d", (i*37)%300, w, i), SkipEnrollLink: true}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := map[string]int{}
	pages := 0
	for fl := (account.Filter{Limit: 7}); ; {
		pages++
		p, err := f.svc.Search(ctx, fl)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range p.Users {
			seen[u.ID]++
		}
		if fl.Cursor = p.Next; fl.Cursor == "" {
			break
		}
	}
	close(stop)
	wg.Wait()
	for id := range before {
		if seen[id] != 1 {
			t.Errorf("user %s seen %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("user %s seen %d times", id, n)
		}
	}
	if pages < 9 {
		t.Errorf("only %d pages for %d users", pages, len(seen))
	}
}

func testUpdate(t *testing.T, f fixture) {
	u := create(t, f, "dora", "editor")
	name, preferred := "Dora", "email"
	u2, err := f.svc.Update(ctx, operator, u.ID, account.Change{Username: &name, Preferred: &preferred,
		AddRoles: []string{"admin", "admin"}, RemoveRoles: []string{"editor"},
		AttributesPatch: json.RawMessage(`{"team":null,"plan":{"tier":"pro","seats":3}}`)})
	if err != nil {
		t.Fatal(err)
	}
	attrs, _ := json.Marshal(u2.Attributes)
	if u2.Username != "Dora" || u2.Preferred != "EMAIL" || names2(u2.Roles) != "admin" ||
		string(attrs) != `{"plan":{"seats":3,"tier":"pro"}}` || u2.Version != 2 {
		t.Fatalf("updated: %+v %s", u2, attrs)
	}
	// A nested merge keeps what the patch does not name.
	u3, err := f.svc.Update(ctx, operator, u.ID, account.Change{AttributesPatch: json.RawMessage(`{"plan":{"seats":4}}`), IfVersion: 2})
	attrs, _ = json.Marshal(u3.Attributes)
	if err != nil || string(attrs) != `{"plan":{"seats":4,"tier":"pro"}}` || u3.Version != 3 {
		t.Fatalf("nested merge: %s, %v", attrs, err)
	}
	if _, err := f.svc.Update(ctx, operator, u.ID, account.Change{Username: &name, IfVersion: 2}); !errors.Is(err, account.ErrStale) {
		t.Errorf("stale version: %v", err)
	}
	for _, ch := range []account.Change{
		{AttributesPatch: json.RawMessage(`[1]`)},
		{AttributesPatch: json.RawMessage(`{`)},
		{AttributesPatch: json.RawMessage(`{"big":"` + strings.Repeat("x", 5000) + `"}`)},
	} {
		if _, err := f.svc.Update(ctx, operator, u.ID, ch); fieldOf(err, account.ErrInvalid) != "attributes" {
			t.Errorf("patch %.20s: %v", ch.AttributesPatch, err)
		}
	}
	other := create(t, f, "eve")
	taken := "EVE@example.com"
	if _, err := f.svc.Update(ctx, operator, u.ID, account.Change{Email: &taken}); fieldOf(err, account.ErrConflict) != "email" {
		t.Errorf("email taken: %v", err)
	}
	if _, err := f.svc.Update(ctx, operator, "8a7c8e7e-0000-4000-8000-000000000000", account.Change{Username: &name}); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
	if got, _ := f.svc.Get(ctx, u.ID); got.Version != 3 || got.Email != "dora@example.com" {
		t.Errorf("refused changes changed the user: %+v", got)
	}
	_ = other
}

func names2(s storage.Strings) string { return strings.Join(s, ",") }

// testUpdateConcurrent: two changes conditional on the same version, at
// once: exactly one applies.
func testUpdateConcurrent(t *testing.T, f fixture) {
	u := create(t, f, "fay")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			ph := fmt.Sprintf("+4420794600%02d", i)
			_, errs[i] = f.svc.Update(ctx, operator, u.ID, account.Change{Phone: &ph, IfVersion: u.Version})
		})
	}
	wg.Wait()
	stale := 0
	for _, err := range errs {
		switch {
		case errors.Is(err, account.ErrStale):
			stale++
		case err != nil:
			t.Fatal(err)
		}
	}
	if got, _ := f.svc.Get(ctx, u.ID); stale != 1 || got.Version != u.Version+1 {
		t.Errorf("%d stale, version %d: want exactly one change applied", stale, got.Version)
	}
}

// grant gives the user a session and a live refresh token.
func grant(t *testing.T, f fixture, u *storage.User) {
	t.Helper()
	c := &storage.Client{ID: "app-" + u.Username, Type: storage.ClientWeb, AuthMethod: storage.AuthSecretBasic, SecretHash: []byte("d"),
		RedirectURIs: storage.Strings{"https://app.example.com/cb"}, RequirePKCE: true}
	if _, err := f.db.GetClient(ctx, c.ID); errors.Is(err, storage.ErrNotFound) {
		if err := f.db.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	now := f.clock.Now()
	s := &storage.Session{ID: "s-" + u.ID + now.String(), CookieHash: []byte(u.ID + now.String()), UserID: u.ID, AuthTime: now, ExpiresAt: now.Add(time.Hour)}
	if err := f.db.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	rt := &storage.RefreshToken{ID: "rt-" + u.ID + now.String(), TokenHash: []byte("h" + u.ID + now.String()), FamilyID: "f-" + u.ID,
		ClientID: c.ID, UserID: u.ID, SessionID: sql.NullString{String: s.ID, Valid: true}, AuthTime: now,
		ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(24 * time.Hour)}
	if err := f.db.CreateRefreshToken(ctx, rt); err != nil {
		t.Fatal(err)
	}
}

func live(t *testing.T, f fixture, u *storage.User) (sessions, grants int) {
	t.Helper()
	s, err := f.svc.Sessions(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return len(s.Sessions), len(s.Grants)
}

// testRevokeOnChange: each change that affects sign-in takes back what it
// must, and a change that does not leaves it alone (the control).
func testRevokeOnChange(t *testing.T, f fixture) {
	u := create(t, f, "gil", "editor")
	grant(t, f, u)
	phone := "+442079460000"
	if _, err := f.svc.Update(ctx, operator, u.ID, account.Change{Phone: &phone}); err != nil {
		t.Fatal(err)
	}
	if s, g := live(t, f, u); s != 1 || g != 1 {
		t.Fatalf("a phone change ended %d sessions / %d grants left; want both kept", s, g)
	}
	if _, err := f.svc.Update(ctx, operator, u.ID, account.Change{AddRoles: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	if s, g := live(t, f, u); s != 1 || g != 0 {
		t.Errorf("after a role change: %d sessions, %d grants; want the session kept, the grant revoked", s, g)
	}
	for _, change := range []struct {
		name string
		do   func() error
	}{
		{"password", func() error { return f.svc.SetPassword(ctx, operator, u.ID, "another long passphrase") }},
		{"disable", func() error { _, err := f.svc.Disable(ctx, operator, u.ID); return err }},
		{"factor reset", func() error { return f.svc.ResetFactor(ctx, operator, u.ID, account.FactorAll) }},
		{"end sessions", func() error { return f.svc.EndSessions(ctx, operator, u.ID) }},
	} {
		f.clock.Advance(time.Second)
		grant(t, f, u)
		if err := change.do(); err != nil {
			t.Fatalf("%s: %v", change.name, err)
		}
		if s, g := live(t, f, u); s != 0 || g != 0 {
			t.Errorf("after %s: %d sessions, %d grants live", change.name, s, g)
		}
	}
	if got, _ := f.svc.Get(ctx, u.ID); got.PasswordHash != "tag:another long passphrase" || !got.Disabled {
		t.Errorf("changes not applied: %+v", got)
	}
	if strings.Join(*f.sent, "|") != "gil: Your password was changed|gil: A second factor was removed from your account" {
		t.Errorf("notices: %q", *f.sent)
	}
	if err := f.svc.SetPassword(ctx, operator, u.ID, "short"); fieldOf(err, account.ErrInvalid) != "password" {
		t.Errorf("weak password: %v", err)
	}
}

func testFactors(t *testing.T, f fixture) {
	u := create(t, f, "hal")
	fs, err := f.svc.Factors(ctx, u.ID)
	if err != nil || strings.Join(fs.Methods, ",") != "EMAIL" || fs.TOTP || fs.RecoveryCodesLeft != 0 {
		t.Fatalf("factors of a new user: %+v, %v", fs, err)
	}
	e, err := f.svc.EnrollTOTP(ctx, operator, u.ID)
	if err != nil || !strings.HasPrefix(e.URL, "otpauth://totp/stile%20test:hal?") {
		t.Fatalf("enrol TOTP: %+v, %v", e, err)
	}
	codes, err := f.svc.RecoveryCodes(ctx, operator, u.ID)
	if err != nil || len(codes) != 10 {
		t.Fatalf("recovery codes: %v, %v", codes, err)
	}
	fs, _ = f.svc.Factors(ctx, u.ID)
	if strings.Join(fs.Methods, ",") != "TOTP,EMAIL,RECOVERY" || !fs.TOTP || fs.RecoveryCodesLeft != 10 {
		t.Fatalf("factors after enrolment: %+v", fs)
	}
	if err := f.svc.ResetFactor(ctx, operator, u.ID, account.FactorRecoveryCodes); err != nil {
		t.Fatal(err)
	}
	if fs, _ = f.svc.Factors(ctx, u.ID); !fs.TOTP || fs.RecoveryCodesLeft != 0 {
		t.Errorf("after removing the codes: %+v", fs)
	}
	if err := f.svc.ResetFactor(ctx, operator, u.ID, account.FactorTOTP); err != nil {
		t.Fatal(err)
	}
	if fs, _ = f.svc.Factors(ctx, u.ID); fs.TOTP {
		t.Errorf("after removing TOTP: %+v", fs)
	}
	if err := f.svc.ResetFactor(ctx, operator, u.ID, "password"); fieldOf(err, account.ErrInvalid) != "factor" {
		t.Errorf("unknown factor: %v", err)
	}
	url, exp, err := f.svc.EnrollLink(ctx, operator, u.ID, time.Hour)
	if err != nil || !strings.Contains(url, "/enroll?token=") || !exp.Equal(f.clock.Now().Add(time.Hour)) {
		t.Errorf("enrolment link: %q %v %v", url, exp, err)
	}
	if _, _, err := f.svc.EnrollLink(ctx, operator, u.ID, 8*24*time.Hour); fieldOf(err, account.ErrInvalid) != "ttl" {
		t.Errorf("ttl too long: %v", err)
	}
	if _, err := f.svc.Disable(ctx, operator, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.EnrollLink(ctx, operator, u.ID, time.Hour); !errors.Is(err, account.ErrConflict) {
		t.Errorf("link for a disabled user: %v", err)
	}
	if evs := events(t, f, "user.factor_reset"); len(evs) != 3 || evs[2].Outcome != storage.Failure || evs[0].Detail["factor"] != "recovery_codes" {
		t.Errorf("factor reset events: %+v", evs)
	}
}

func testDelete(t *testing.T, f fixture) {
	u := create(t, f, "ida")
	grant(t, f, u)
	if err := f.svc.Delete(ctx, operator, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Get(ctx, u.ID); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("deleted user: %v", err)
	}
	if err := f.svc.Delete(ctx, operator, u.ID); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("deleted twice: %v", err)
	}
	// The name is free again, and the trail still tells the story.
	create(t, f, "ida")
	evs, _ := f.db.ListEvents(ctx, storage.EventFilter{UserID: u.ID})
	var types []string
	for _, e := range evs {
		types = append(types, e.Type+"/"+e.Outcome)
	}
	if strings.Join(types, ",") != "user.created/success,user.deleted/success,user.deleted/failure" {
		t.Errorf("trail of the deleted user: %v", types)
	}
}
