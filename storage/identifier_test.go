package storage_test

import (
	"database/sql"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestIdentifierStore covers what migration 0015_identifiers adds: a phone
// number belongs to one account (in E.164, whatever separators it was
// written with) on every write — create, update, import — and a login
// transaction may have no user (a passwordless start no account matched).
func TestIdentifierStore(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			t.Run("PhoneUnique", func(t *testing.T) { testPhoneUnique(t, newStoreFixture(t, d)) })
			t.Run("UserlessTransaction", func(t *testing.T) { testUserlessTransaction(t, newStoreFixture(t, d)) })
			t.Run("UpgradeFromV11", func(t *testing.T) { testUpgradeFromV11(t, d) })
		})
	}
}

func testPhoneUnique(t *testing.T, f fixture) {
	a := &storage.User{Username: "ann", Phone: "+44 20 7946-0000"}
	if err := f.db.CreateUser(ctx, a); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"+442079460000", "+44 (20) 7946 0000", "+44.20.7946.0000"} {
		got, err := f.db.GetUserByPhone(ctx, p)
		if err != nil || got.ID != a.ID {
			t.Fatalf("GetUserByPhone(%q) = %+v, %v; want ann", p, got, err)
		}
	}
	if _, err := f.db.GetUserByPhone(ctx, "+442079460001"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("another number: %v, want ErrNotFound", err)
	}
	if _, err := f.db.GetUserByPhone(ctx, ""); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("no number: %v, want ErrNotFound", err)
	}
	// The same number written differently is refused, on create and update.
	err := f.db.CreateUser(ctx, &storage.User{Username: "bob", Phone: "+442079460000"})
	if !errors.Is(err, storage.ErrConflict) || storage.ConflictField(err) != "phone" {
		t.Fatalf("second account with ann's number: %v (field %q), want a phone conflict", err, storage.ConflictField(err))
	}
	b := &storage.User{Username: "bob", Phone: "+44 20 7946 0001"}
	if err := f.db.CreateUser(ctx, b); err != nil { // positive control: another number is fine
		t.Fatal(err)
	}
	_, err = f.db.UpdateUser(ctx, b.ID, func(u *storage.User) error { u.Phone = "+44-20-7946-0000"; return nil })
	if !errors.Is(err, storage.ErrConflict) || storage.ConflictField(err) != "phone" {
		t.Fatalf("update to ann's number: %v, want a phone conflict", err)
	}
	// Accounts without a number never conflict.
	for _, n := range []string{"c1", "c2"} {
		if err := f.db.CreateUser(ctx, &storage.User{Username: n}); err != nil {
			t.Fatalf("account %s without a phone: %v", n, err)
		}
	}
	// An update keeps the key in step: ann's old number is free after she changes it.
	if _, err := f.db.UpdateUser(ctx, a.ID, func(u *storage.User) error { u.Phone = "+15555550100"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.GetUserByPhone(ctx, "+442079460000"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ann's old number still finds someone: %v", err)
	}
	if _, err := f.db.UpdateUser(ctx, b.ID, func(u *storage.User) error { u.Phone = "+44 20 7946 0000"; return nil }); err != nil {
		t.Fatalf("bob takes the freed number: %v", err)
	}
	// An import skips a line whose number is taken, and says so.
	skipped, err := f.db.ImportUsers(ctx, []storage.ImportUser{
		{User: storage.User{Username: "dan", Phone: "+1 555 555 0100"}},
		{User: storage.User{Username: "eve", Phone: "+1 555 555 0199"}},
		{User: storage.User{Username: "fay", Phone: "+15555550199"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if skipped[0] != storage.SkipPhoneTaken || skipped[1] != "" || skipped[2] != storage.SkipPhoneTaken {
		t.Fatalf("import skips = %q, want [phone taken, imported, phone taken]", skipped)
	}
	if got, err := f.db.GetUserByPhone(ctx, "+15555550199"); err != nil || got.Username != "eve" {
		t.Fatalf("imported eve by phone: %+v, %v", got, err)
	}
}

func testUserlessTransaction(t *testing.T, f fixture) {
	mustClient(t, f.db, "app")
	now := f.clock.Now()
	in := &storage.LoginTransaction{ID: "tx-nobody", ClientID: "app", Door: storage.DoorPages, Method: "EMAIL",
		Passwordless: true, Subject: "name:abc", BindingHash: []byte("b"), ExpiresAt: now.Add(time.Minute)}
	if err := f.db.CreateLoginTransaction(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := f.db.GetLoginTransaction(ctx, "tx-nobody")
	if err != nil || got.UserID != "" || !got.Passwordless || got.Subject != "name:abc" {
		t.Fatalf("userless transaction read back: %+v, %v", got, err)
	}
	u := mustUser(t, f.db, "gus")
	if err := f.db.CreateLoginTransaction(ctx, &storage.LoginTransaction{ID: "tx-gus", ClientID: "app", Door: storage.DoorPages,
		UserID: u.ID, Method: "TOTP", ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if got, err := f.db.GetLoginTransaction(ctx, "tx-gus"); err != nil || got.UserID != u.ID || got.Passwordless || got.Subject != "" {
		t.Fatalf("a password transaction read back: %+v, %v", got, err)
	}
	// The user's foreign key still holds: a transaction for nobody that
	// exists is refused.
	if err := f.db.CreateLoginTransaction(ctx, &storage.LoginTransaction{ID: "tx-ghost", ClientID: "app", Door: storage.DoorPages,
		UserID: "no-such-user", Method: "TOTP", ExpiresAt: now.Add(time.Minute)}); err == nil {
		t.Fatal("a transaction for a user who does not exist was stored")
	}
}

// testUpgradeFromV11 migrates a database with users' phone numbers written
// with separators: they keep working as sign-in identifiers in E.164. A
// database where two accounts share a number refuses the upgrade.
func testUpgradeFromV11(t *testing.T, d storagetest.Dialect) {
	for _, dup := range []bool{false, true} {
		rawURL := d.URL(t)
		raw, p := rawAt(t, rawURL)
		if _, err := p.UpTo(ctx, 11); err != nil {
			t.Fatalf("migrate to version 11: %v", err)
		}
		now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
		second := "+1 (555) 555-0100"
		if dup {
			second = "+44 20 7946.0000"
		}
		for i, ph := range []string{"+44 20 7946-0000", second} {
			name := []string{"one", "two"}[i]
			if _, err := raw.ExecContext(ctx, rebindFor(rawURL, `INSERT INTO users (id, username, username_key, email, phone, created_at, updated_at)
				VALUES (?, ?, ?, '', ?, ?, ?)`), "u-"+name, name, name, ph, now, now); err != nil {
				t.Fatal(err)
			}
		}
		_, err := p.Up(ctx)
		if dup {
			if err == nil {
				t.Fatal("two accounts with one number: the upgrade went through")
			}
			raw.Close()
			continue
		}
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		raw.Close()
		db := storagetest.Open(t, rawURL)
		for ph, want := range map[string]string{"+442079460000": "u-one", "+15555550100": "u-two"} {
			if u, err := db.GetUserByPhone(ctx, ph); err != nil || u.ID != want {
				t.Fatalf("after the upgrade, %s: %+v, %v; want %s", ph, u, err, want)
			}
		}
	}
}

// rawAt opens a database without stile's Open, for migrating step by step.
func rawAt(t *testing.T, rawURL string) (*sql.DB, *goose.Provider) {
	t.Helper()
	driver, dsn, dir, gd := "postgres", rawURL, "migrations/postgres", goose.DialectPostgres
	if strings.HasPrefix(rawURL, "sqlite:") {
		q := url.Values{}
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "busy_timeout(10000)")
		q.Set("_time_format", "sqlite")
		q.Set("_timezone", "UTC")
		driver, dsn, dir, gd = "sqlite", "file:"+strings.TrimPrefix(rawURL, "sqlite:")+"?"+q.Encode(), "migrations/sqlite", goose.DialectSQLite3
		if err := os.WriteFile(strings.TrimPrefix(rawURL, "sqlite:"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	p, err := goose.NewProvider(gd, raw, os.DirFS(dir), goose.WithTableName("stile_schema_migrations"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return raw, p
}

func rebindFor(rawURL, q string) string {
	if strings.HasPrefix(rawURL, "sqlite:") {
		return q
	}
	return sqlx.Rebind(sqlx.DOLLAR, q)
}
