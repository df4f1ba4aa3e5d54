package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
)

// store opens the CLI's database directly, as the running server would.
func (c *stileCmd) store(t *testing.T) *storage.DB {
	t.Helper()
	db, err := storage.Open(context.Background(), c.env["STILE_DATABASE"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// signedIn is what a sign-in at a client leaves in the store: an SSO
// session, a refresh token and an access token.
type signedIn struct{ session, refresh, access string }

func signIn(t *testing.T, db *storage.DB, username, clientID string) signedIn {
	t.Helper()
	ctx, now := context.Background(), time.Now()
	u, err := db.GetUserByUsername(ctx, username)
	if err != nil {
		t.Fatal(err)
	}
	g := signedIn{session: "s-" + username + "-" + clientID, refresh: "r-" + username + "-" + clientID, access: "a-" + username + "-" + clientID}
	sid := sql.NullString{String: g.session, Valid: true}
	for _, err := range []error{
		db.CreateSession(ctx, &storage.Session{ID: g.session, CookieHash: []byte(g.session), UserID: u.ID, AuthTime: now, ExpiresAt: now.Add(time.Hour)}),
		db.CreateRefreshToken(ctx, &storage.RefreshToken{ID: g.refresh, TokenHash: []byte(g.refresh), FamilyID: g.refresh, ClientID: clientID,
			UserID: u.ID, SessionID: sid, AuthTime: now, ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(time.Hour)}),
		db.CreateAccessToken(ctx, &storage.AccessToken{ID: g.access, ClientID: clientID, UserID: u.ID, SessionID: sid, ExpiresAt: now.Add(time.Hour)}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// ended says whether the session ended and each token was revoked.
func (g signedIn) ended(t *testing.T, db *storage.DB) string {
	t.Helper()
	ctx := context.Background()
	s, err1 := db.GetSession(ctx, g.session)
	r, err2 := db.GetRefreshToken(ctx, g.refresh)
	a, err3 := db.GetAccessToken(ctx, g.access)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("session ended %v, refresh revoked %v, access revoked %v", s.EndedAt.Valid, r.RevokedAt.Valid, a.RevokedAt.Valid)
}

// TestCLIAccountChangesRevokeTokens: disable, set-password and reset-otp
// end the user's sessions and revoke their tokens — and no one else's.
func TestCLIAccountChangesRevokeTokens(t *testing.T) {
	const all, none = "session ended true, refresh revoked true, access revoked true",
		"session ended false, refresh revoked false, access revoked false"
	for _, tc := range []struct {
		args        []string
		stdin, says string
	}{
		{[]string{"user", "disable", "alice"}, "", "alice: disabled;"},
		{[]string{"user", "set-password", "alice", "--password-stdin"}, "a new long passphrase\n", "alice: password set;"},
		{[]string{"user", "reset-otp", "alice"}, "", "stile user enroll-link"},
	} {
		t.Run(tc.args[1], func(t *testing.T) {
			c := newCLI(t)
			c.ok("", "client", "add", "--id", "app", "--type", "spa", "--redirect-uri", "https://app.example.com/cb")
			c.ok("a long passphrase\n", "user", "add", "--username", "alice", "--password-stdin")
			c.ok("a long passphrase\n", "user", "add", "--username", "bob", "--password-stdin")
			c.ok("", "user", "totp", "alice")
			db := c.store(t)
			alice, bob := signIn(t, db, "alice", "app"), signIn(t, db, "bob", "app")
			out := c.ok(tc.stdin, tc.args...)
			if !strings.Contains(out, tc.says) || !strings.Contains(out, "sessions are ended and their tokens revoked") {
				t.Errorf("output does not say what happened:\n%s", out)
			}
			if got := alice.ended(t, db); got != all {
				t.Errorf("alice's: %s", got)
			}
			if got := bob.ended(t, db); got != none {
				t.Errorf("bob's (untouched): %s", got)
			}
		})
	}

	c := newCLI(t)
	c.ok("", "user", "add", "--username", "alice")
	var out map[string]any
	c.json(&out, "", "user", "disable", "alice", "--json")
	if out["change"] != "disable" || out["sessions_ended"] != true || out["username"] != "alice" {
		t.Errorf("user disable --json = %v", out)
	}
	c.fails("--password-stdin", "", "user", "set-password", "alice")
	c.fails(`no user "nobody"`, "", "user", "reset-otp", "nobody")
	c.ok("", "user", "reset-otp", "alice") // positive control: with nothing enrolled, too
}

func TestCLIUserFlagErrors(t *testing.T) {
	c := newCLI(t)
	c.ok("", "user", "add", "--username", "alice", "--email", "alice@example.com", "--role", "editor")
	c.fails("--role", "", "user", "add", "--username", "bob", "--role", " ")
	c.ok("", "user", "add", "--username", "bob", "--role", "viewer")

	c.fails("--username", "", "user", "update", "alice", "--username", "")
	c.fails("--username", "", "user", "update", "alice", "--username", "al ice")
	c.fails("--phone", "", "user", "update", "alice", "--phone", "07700 900123") // no country code
	c.fails("--phone", "", "user", "update", "alice", "--phone", "+44 call me")
	c.ok("", "user", "update", "alice", "--phone", "+44 7700-900 123")
	c.fails("--role/--add-role", "", "user", "update", "alice", "--add-role", "")
	c.fails("--attribute", "", "user", "update", "alice", "--attribute", "novalue")
	big := `{"notes":"` + strings.Repeat("x", storage.MaxAttributesSize) + `"}`
	c.fails("--attribute/--attributes", "", "user", "update", "alice", "--attributes", big)
	c.fails(`no user "nobody"`, "", "user", "update", "nobody", "--email", "x@example.com")

	var u map[string]any
	c.json(&u, "", "user", "update", "alice", "--username", "alicia", "--add-role", "admin",
		"--attributes", `{"plan":"pro"}`, "--attribute", "seats=3", "--json")
	attrs, _ := u["attributes"].(map[string]any)
	if u["username"] != "alicia" || strings.Join(toStrings(u["roles"]), ",") != "editor,admin" || u["email"] != "alice@example.com" ||
		attrs["plan"] != "pro" || attrs["seats"] != float64(3) || len(attrs) != 2 {
		t.Fatalf("user update (only the given flags change) = %v", u)
	}
	if out := c.ok("", "user", "update", "alicia", "--remove-attribute", "seats"); !strings.Contains(out, `{"plan":"pro"}`) {
		t.Errorf("user update text output:\n%s", out)
	}
}

func TestCLIEnrollLink(t *testing.T) {
	c := newCLI(t)
	c.ok("", "user", "add", "--username", "bob")
	// Without a password the link lets the user choose one.
	if out := c.ok("", "user", "enroll-link", "bob"); !strings.Contains(out, "choose a password") {
		t.Errorf("enroll-link for a user without a password:\n%s", out)
	}
	c.ok("a long passphrase\n", "user", "set-password", "bob", "--password-stdin")
	c.ok("", "user", "disable", "bob")
	c.fails("enable them first", "", "user", "enroll-link", "bob")
	c.ok("", "user", "enable", "bob")
	c.fails("--issuer", "", "user", "enroll-link", "bob", "--issuer", "id.example.com")
	c.fails("--ttl", "", "user", "enroll-link", "bob", "--ttl", "0s")
	c.fails("--ttl", "", "user", "enroll-link", "bob", "--ttl", "169h")
	c.fails(`no user "nobody"`, "", "user", "enroll-link", "nobody")

	var first map[string]any
	c.json(&first, "", "user", "enroll-link", "bob", "--issuer", "https://id.example.com/", "--ttl", "168h", "--json")
	link, _ := first["url"].(string)
	expires, err := time.Parse(time.RFC3339, fmt.Sprint(first["expires_at"]))
	if !strings.HasPrefix(link, "https://id.example.com/enroll?token=") || first["username"] != "bob" || err != nil ||
		time.Until(expires) < 167*time.Hour || time.Until(expires) > 168*time.Hour {
		t.Fatalf("enroll-link --json = %v", first)
	}

	c.env["STILE_ISSUER"] = "https://sso.example.org"
	out := c.ok("", "user", "enroll-link", "bob")
	for _, want := range []string{"https://sso.example.org/enroll?token=", "enter their password", "QR code"} {
		if !strings.Contains(out, want) {
			t.Errorf("enroll-link text lacks %q:\n%s", want, out)
		}
	}

	// The store holds each link for bob; issuing the second ended the first.
	db := c.store(t)
	state := func(link string) string {
		u, _ := url.Parse(strings.Fields(link)[0])
		h := sha256.Sum256([]byte(u.Query().Get("token")))
		l, err := db.EnrollmentLinkByToken(context.Background(), h[:])
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("for %v, used %v", l.UserID == first["uid"], l.UsedAt.Valid)
	}
	if got := state(link); got != "for true, used true" {
		t.Errorf("first link: %s", got)
	}
	if got := state(out[strings.Index(out, "https://"):]); got != "for true, used false" {
		t.Errorf("second link: %s", got)
	}
}
