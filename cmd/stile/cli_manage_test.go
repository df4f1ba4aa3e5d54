package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

func TestCLIUserManagement(t *testing.T) {
	c := newCLI(t)
	c.ok("a long passphrase\n", "user", "add", "--username", "alice", "--role", "editor", "--attribute", "plan=pro", "--password-stdin")
	c.ok("", "user", "add", "--username", "bob")

	var list []map[string]any
	c.json(&list, "", "user", "list", "--json")
	if len(list) != 2 || list[0]["username"] != "alice" || list[1]["username"] != "bob" {
		t.Fatalf("user list = %v", list)
	}
	if out := c.ok("", "user", "list"); !strings.Contains(out, "USERNAME") || !strings.Contains(out, "bob") {
		t.Errorf("user list text:\n%s", out)
	}

	var u map[string]any
	c.json(&u, "", "user", "update", "alice", "--email", "a@example.com", "--add-role", "admin", "--remove-role", "editor",
		"--attribute", "seats=3", "--remove-attribute", "plan", "--json")
	attrs, _ := u["attributes"].(map[string]any)
	if u["email"] != "a@example.com" || strings.Join(toStrings(u["roles"]), ",") != "admin" || attrs["seats"] != float64(3) || attrs["plan"] != nil {
		t.Fatalf("user update = %v", u)
	}
	c.json(&u, "", "user", "update", "alice", "--role", "x", "--role", "y", "--attributes", `{"k":"v"}`, "--json")
	if strings.Join(toStrings(u["roles"]), ",") != "x,y" || u["attributes"].(map[string]any)["k"] != "v" || u["email"] != "a@example.com" {
		t.Fatalf("user update replacing roles and attributes = %v", u)
	}
	c.fails("--username", "", "user", "update", "alice", "--username", "BOB")
	c.json(&u, "", "user", "update", "alice", "--username", "alicia", "--json")
	if u["username"] != "alicia" {
		t.Fatalf("rename = %v", u)
	}

	c.ok("", "user", "disable", "alicia")
	c.json(&u, "", "user", "show", "alicia", "--json")
	if u["disabled"] != true {
		t.Fatal("user disable did not disable")
	}
	c.ok("", "user", "enable", "alicia")
	c.json(&u, "", "user", "show", "alicia", "--json")
	if u["disabled"] != false {
		t.Fatal("user enable did not enable")
	}

	c.fails("--password-stdin", "", "user", "set-password", "bob")
	c.fails("--password-stdin", "short\n", "user", "set-password", "bob", "--password-stdin")
	c.ok("another long passphrase\n", "user", "set-password", "bob", "--password-stdin")
	if out := c.ok("", "user", "show", "bob"); !strings.Contains(out, "password set   true") {
		t.Errorf("after set-password:\n%s", out)
	}

	c.ok("", "user", "totp", "bob")
	c.ok("", "user", "reset-otp", "bob")
	c.json(&u, "", "user", "show", "bob", "--json")
	if u["totp_enrolled"] != false {
		t.Fatal("reset-otp left TOTP enrolled")
	}

	var link map[string]any
	c.json(&link, "", "user", "enroll-link", "bob", "--issuer", "https://id.example.com", "--ttl", "2h", "--json")
	if !strings.HasPrefix(link["url"].(string), "https://id.example.com/enroll?token=") || link["expires_at"] == nil {
		t.Fatalf("enroll-link = %v", link)
	}
	c.fails("--ttl", "", "user", "enroll-link", "bob", "--ttl", "30d0h")
	c.fails("--ttl", "", "user", "enroll-link", "bob", "--ttl", "200h")
	c.fails(`no user "nobody"`, "", "user", "disable", "nobody")
	c.fails(`unknown command "frobnicate"`, "", "user", "frobnicate")
}

// TestCLIAccountChangesEndSessions: disable, set-password and reset-otp
// end what was issued to the user, seen through the store.
func TestCLIAccountChangesEndSessions(t *testing.T) {
	for _, change := range [][]string{{"user", "disable", "alice"}, {"user", "set-password", "alice", "--password-stdin"},
		{"user", "reset-otp", "alice"}} {
		c := newCLI(t)
		c.ok("a long passphrase\n", "user", "add", "--username", "alice", "--password-stdin")
		c.ok("", "user", "totp", "alice")
		db, u, s := c.openSession(t)
		c.ok("a new long passphrase\n", change...)
		got, err := db.GetSession(context.Background(), s.ID)
		if err != nil || !got.EndedAt.Valid {
			t.Errorf("%v: session %s not ended (%v)", change, u.Username, err)
		}
	}
}

// openSession opens the CLI's database directly and starts a session for
// alice, as a sign-in would have.
func (c *stileCmd) openSession(t *testing.T) (*storage.DB, *storage.User, *storage.Session) {
	t.Helper()
	db, err := storage.Open(context.Background(), c.env["STILE_DATABASE"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	u, err := db.GetUserByUsername(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	s := &storage.Session{ID: "s1", CookieHash: []byte("c"), UserID: u.ID, AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := db.CreateSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return db, u, s
}

func TestCLIClientManagement(t *testing.T) {
	c := newCLI(t)
	var cl map[string]any
	c.json(&cl, "", "client", "add", "--id", "cms", "--type", "web", "--redirect-uri", "https://cms.example.com/cb",
		"--grant-type", "refresh_token", "--refresh-token-idle", "48h", "--json")
	if strings.Join(toStrings(cl["grant_types"]), ",") != "authorization_code,refresh_token" || cl["refresh_token_idle"] != float64(48*3600) {
		t.Fatalf("client add with refresh tokens = %v", cl)
	}
	oldSecret := cl["client_secret"].(string)
	c.ok("", "client", "add", "--id", "spa", "--type", "spa", "--redirect-uri", "https://spa.example.com/cb")

	var list []map[string]any
	c.json(&list, "", "client", "list", "--json")
	if len(list) != 2 || list[0]["client_id"] != "cms" || list[0]["client_secret"] != nil {
		t.Fatalf("client list = %v", list)
	}

	c.json(&cl, "", "client", "update", "cms", "--name", "The CMS", "--audience", "api", "--access-token-format", "opaque", "--json")
	if cl["name"] != "The CMS" || strings.Join(toStrings(cl["audiences"]), ",") != "api" || cl["access_token_format"] != "opaque" ||
		strings.Join(toStrings(cl["redirect_uris"]), ",") != "https://cms.example.com/cb" || cl["client_secret"] != nil ||
		cl["refresh_token_idle"] != float64(48*3600) {
		t.Fatalf("client update (only given flags change) = %v", cl)
	}
	c.json(&cl, "", "client", "update", "cms", "--rotate-secret", "--json")
	if s, _ := cl["client_secret"].(string); len(s) < 43 || s == oldSecret {
		t.Fatalf("rotate-secret = %v", cl)
	}
	c.fails("--grant-type", "", "client", "update", "cms", "--grant-type", "password")
	c.fails("--auth-method", "", "client", "update", "spa", "--auth-method", "client_secret_post")
	c.fails(`no client "nope"`, "", "client", "update", "nope", "--name", "x")

	c.ok("", "client", "remove", "spa")
	c.fails(`no client "spa"`, "", "client", "show", "spa")
	c.fails(`no client "spa"`, "", "client", "remove", "spa")
}

func TestCLIKeys(t *testing.T) {
	c := newCLI(t)
	var list []map[string]any
	c.json(&list, "", "keys", "list", "--json")
	if len(list) != 0 {
		t.Fatalf("keys before any server start: %v", list)
	}
	c.openDB(t) // as a server start would, create the first key
	c.ok("", "keys", "rotate", "--activate-after", "30m")
	c.json(&list, "", "keys", "list", "--json")
	if len(list) != 2 {
		t.Fatalf("keys after rotate = %v", list)
	}
	var next map[string]any
	for _, k := range list {
		if k["state"] == "next" {
			next = k
		}
		if k["private_sealed"] != nil || k["PrivateSealed"] != nil {
			t.Fatal("keys list shows private key material")
		}
	}
	if next == nil || next["activate_after"] == nil || next["alg"] != "RS256" {
		t.Fatalf("no next key with its activation time: %v", list)
	}
	c.fails("already published", "", "keys", "rotate")
	c.fails("--activate-after", "", "keys", "rotate", "--activate-after", "-1m")
	if out := c.ok("", "keys", "list"); !strings.Contains(out, "next") || !strings.Contains(out, "active") {
		t.Errorf("keys list text:\n%s", out)
	}
}

// openDB opens the CLI's database with its master key and makes sure an
// active signing key exists, as `stile serve` does at start.
func (c *stileCmd) openDB(t *testing.T) {
	t.Helper()
	cl := &cli{getenv: func(k string) string { return c.env[k] }, stderr: new(strings.Builder),
		database: c.env["STILE_DATABASE"], secretFile: c.env["STILE_SECRET_FILE"]}
	env, err := cl.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	if err := keys.NewManager(env.db, env.sealer, time.Now, 10*time.Minute).Ensure(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
}

// TestCLIAuditTrail: what an operator changes at the CLI is in the audit
// trail, as done by the operator, with no secret; a refused change is
// recorded as a failure, and a command that only reads records nothing.
func TestCLIAuditTrail(t *testing.T) {
	c := newCLI(t)
	c.ok("a long passphrase\n", "user", "add", "--username", "ann", "--password-stdin")
	c.fails("--username", "", "user", "add", "--username", "ANN")
	c.ok("", "user", "update", "ann", "--add-role", "editor")
	c.ok("", "user", "list")
	c.ok("", "user", "show", "ann")
	c.ok("", "user", "disable", "ann")
	c.ok("", "client", "add", "--id", "cms", "--type", "web", "--redirect-uri", "https://cms.example.com/cb")
	c.ok("", "client", "update", "cms", "--rotate-secret")
	c.ok("", "client", "remove", "cms")

	db := storagetest.Open(t, c.env["STILE_DATABASE"])
	evs, err := db.ListEvents(context.Background(), storage.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Type+"/"+e.Outcome)
		b, _ := json.Marshal(e)
		if !strings.HasPrefix(e.Actor, "cli:") || strings.Contains(string(b), "passphrase") {
			t.Errorf("event %s", b)
		}
	}
	want := "user.created/success,user.created/failure,user.updated/success,user.disabled/success," +
		"client.created/success,client.updated/success,client.removed/success"
	if strings.Join(got, ",") != want {
		t.Errorf("trail:\n got %s\nwant %s", strings.Join(got, ","), want)
	}
}

func TestCLIUserListDeleteSessions(t *testing.T) {
	c := newCLI(t)
	c.ok("", "user", "add", "--username", "ann", "--email", "ann@example.com", "--role", "editor", "--attribute", "team=blue")
	c.ok("", "user", "add", "--username", "bob", "--email", "bob@example.org", "--disabled")
	c.fails("--email", "", "user", "add", "--username", "carl", "--email", "ANN@example.com")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "ann,bob"},
		{[]string{"--username-prefix", "A"}, "ann"},
		{[]string{"--email-prefix", "bob@"}, "bob"},
		{[]string{"--role", "editor"}, "ann"},
		{[]string{"--attribute", "team=blue"}, "ann"},
		{[]string{"--disabled"}, "bob"},
		{[]string{"--disabled=false"}, "ann"},
		{[]string{"--role", "nobody"}, ""},
	} {
		var users []map[string]any
		c.json(&users, "", append([]string{"user", "list", "--json"}, tc.args...)...)
		var names []string
		for _, u := range users {
			names = append(names, fmt.Sprint(u["username"]))
		}
		if strings.Join(names, ",") != tc.want {
			t.Errorf("user list %v = %v, want %s", tc.args, names, tc.want)
		}
	}
	c.fails("--attribute", "", "user", "list", "--attribute", "novalue")

	var s map[string]any
	c.json(&s, "", "user", "sessions", "ann", "--end", "--json")
	if fmt.Sprint(s["sessions"]) != "[]" || fmt.Sprint(s["grants"]) != "[]" {
		t.Errorf("sessions = %v", s)
	}
	c.fails("--yes", "", "user", "delete", "ann")
	c.ok("", "user", "show", "ann")
	c.ok("", "user", "delete", "ann", "--yes")
	c.fails(`no user "ann"`, "", "user", "show", "ann")
	// The name and the address are free again.
	c.ok("", "user", "add", "--username", "ann", "--email", "ann@example.com")
}
