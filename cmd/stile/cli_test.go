package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// stileCmd runs the stile program in-process, as a shell would.
type stileCmd struct {
	t   *testing.T
	env map[string]string
}

func newCLI(t *testing.T) *stileCmd {
	return &stileCmd{t: t, env: map[string]string{"STILE_DATABASE": storagetest.SQLite(t)}}
}

// run returns stdout and the error; stdin is given to the command.
func (c *stileCmd) run(stdin string, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return c.env[k] }, strings.NewReader(stdin), &out, &errOut)
	return out.String(), err
}

func (c *stileCmd) ok(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.run(stdin, args...)
	if err != nil {
		c.t.Fatalf("stile %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// fails runs a command that must fail and checks the error names wantFlag.
func (c *stileCmd) fails(wantInErr, stdin string, args ...string) {
	c.t.Helper()
	_, err := c.run(stdin, args...)
	if err == nil || !strings.Contains(err.Error(), wantInErr) {
		c.t.Errorf("stile %s: err = %v, want one mentioning %q", strings.Join(args, " "), err, wantInErr)
	}
}

// json runs a command and decodes its output into v, which it resets first
// (decoding into a used map would keep the old keys).
func (c *stileCmd) json(v any, stdin string, args ...string) {
	c.t.Helper()
	switch p := v.(type) {
	case *map[string]any:
		*p = nil
	case *[]map[string]any:
		*p = nil
	case *map[string]string:
		*p = nil
	}
	if err := json.Unmarshal([]byte(c.ok(stdin, args...)), v); err != nil {
		c.t.Fatalf("stile %s: output is not JSON: %v", strings.Join(args, " "), err)
	}
}

func TestCLIUsers(t *testing.T) {
	c := newCLI(t)
	var added map[string]any
	c.json(&added, "a long passphrase\n", "user", "add", "--username", "Alice", "--email", "alice@example.com",
		"--role", "editor", "--role", "admin", "--attribute", "plan=pro", "--attribute", "seats=3",
		"--password-stdin", "--json")
	uid, _ := added["uid"].(string)
	if uid == "" || added["username"] != "Alice" || added["password_hash"] != nil {
		t.Fatalf("user add --json = %v (no uid, or the hash leaked)", added)
	}

	var shown map[string]any
	c.json(&shown, "", "user", "show", "alice", "--json")
	attrs, _ := shown["attributes"].(map[string]any)
	if shown["uid"] != uid || shown["totp_enrolled"] != false || attrs["plan"] != "pro" || attrs["seats"] != float64(3) ||
		strings.Join(toStrings(shown["roles"]), ",") != "editor,admin" {
		t.Fatalf("user show --json = %v", shown)
	}
	if out := c.ok("", "user", "show", uid); !strings.Contains(out, "alice@example.com") || !strings.Contains(out, "totp enrolled  false") {
		t.Errorf("user show by uid, text:\n%s", out)
	}

	var enrolled map[string]string
	c.json(&enrolled, "", "user", "totp", "alice", "--json")
	if enrolled["uid"] != uid || len(enrolled["secret"]) < 32 || !strings.HasPrefix(enrolled["otpauth_url"], "otpauth://totp/") {
		t.Fatalf("user totp --json = %v", enrolled)
	}
	if _, err := login.TOTPCode(enrolled["secret"], time.Now()); err != nil {
		t.Fatalf("the printed secret does not make codes: %v", err)
	}
	c.json(&shown, "", "user", "show", "alice", "--json")
	if shown["totp_enrolled"] != true {
		t.Error("after user totp, totp_enrolled is not true")
	}
	if out := c.ok("", "user", "totp", "alice"); !strings.Contains(out, "otpauth://totp/") || !strings.Contains(out, "█") {
		t.Errorf("user totp text output lacks the URL or the QR code:\n%s", out)
	}

	c.fails("--username", "", "user", "add", "--username", "ALICE")
	c.fails("--username", "", "user", "add")
	c.fails("--password-stdin", "short\n", "user", "add", "--username", "bob", "--password-stdin")
	c.fails("--attribute", "", "user", "add", "--username", "bob", "--attribute", "novalue")
	c.fails("--attributes", "", "user", "add", "--username", "bob", "--attributes", "[1,2]")
	c.fails(`no user "nobody"`, "", "user", "show", "nobody")
	c.ok("a long passphrase\n", "user", "add", "--username", "bob", "--password-stdin") // positive control
}

func TestCLIClients(t *testing.T) {
	c := newCLI(t)
	var web map[string]any
	c.json(&web, "", "client", "add", "--id", "cms", "--name", "Headless CMS", "--type", "web",
		"--redirect-uri", "https://cms.example.com/cb", "--audience", "https://api.example.com",
		"--access-token-lifetime", "5m", "--first-party", "--json")
	secret, _ := web["client_secret"].(string)
	if len(secret) < 43 || web["auth_method"] != "client_secret_basic" || web["require_pkce"] != true || web["access_token_lifetime"] != float64(300) {
		t.Fatalf("client add --json = %v", web)
	}
	var shown map[string]any
	c.json(&shown, "", "client", "show", "cms", "--json")
	if shown["client_secret"] != nil || shown["name"] != "Headless CMS" || shown["first_party"] != true {
		t.Fatalf("client show --json = %v (the secret must not show again)", shown)
	}
	if out := c.ok("", "client", "show", "cms"); !strings.Contains(out, "https://api.example.com") || strings.Contains(out, secret) {
		t.Errorf("client show text:\n%s", out)
	}

	var spa map[string]any
	c.json(&spa, "", "client", "add", "--id", "spa", "--type", "spa", "--redirect-uri", "https://spa.example.com/cb",
		"--web-origin", "https://spa.example.com", "--json")
	if spa["client_secret"] != nil || spa["auth_method"] != "none" || spa["require_pkce"] != true {
		t.Fatalf("public client = %v", spa)
	}

	var own map[string]any
	c.json(&own, "an operator chosen secret of enough length\n", "client", "add", "--id", "own", "--type", "web",
		"--redirect-uri", "https://own.example.com/cb", "--secret-stdin", "--auth-method", "client_secret_post", "--json")
	if own["client_secret"] != "an operator chosen secret of enough length" || own["auth_method"] != "client_secret_post" {
		t.Fatalf("--secret-stdin client = %v", own)
	}

	c.fails("--type", "", "client", "add", "--id", "x", "--type", "robot", "--redirect-uri", "https://x/cb")
	c.fails("--auth-method", "", "client", "add", "--id", "x", "--type", "spa", "--auth-method", "client_secret_basic", "--redirect-uri", "https://x/cb")
	c.fails("--no-require-pkce", "", "client", "add", "--id", "x", "--type", "native", "--no-require-pkce", "--redirect-uri", "http://127.0.0.1/cb")
	c.fails("--redirect-uri", "", "client", "add", "--id", "x", "--type", "web")
	c.fails("--id", "", "client", "add", "--id", "cms", "--type", "web", "--redirect-uri", "https://x/cb")
	c.fails("--secret-stdin", "short\n", "client", "add", "--id", "x", "--type", "web", "--redirect-uri", "https://x/cb", "--secret-stdin")
	c.fails("redirect URI", "", "client", "add", "--id", "x", "--type", "web", "--redirect-uri", "/relative")
	c.fails(`no client "nope"`, "", "client", "show", "nope")
}

func TestCLIMasterKey(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "stile.db")
	c := &stileCmd{t: t, env: map[string]string{"STILE_DATABASE": db}}
	if out := c.ok("", "migrate"); !strings.Contains(out, "up to date") {
		t.Errorf("migrate: %q", out)
	}
	keyFile := filepath.Join(dir, "stile.db.key")
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("first start with SQLite must create %s with mode 0600: %v %v", keyFile, fi, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "stile.db")); fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %o, want 0600", fi.Mode().Perm())
	}
	c.ok("", "migrate") // the same key again

	other := filepath.Join(dir, "other.key")
	os.WriteFile(other, []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), 0o600)
	c.fails("does not match", "", "migrate", "--secret-file", other)

	c.env["STILE_SECRET_FILE"] = other // the environment is read as a fallback
	c.fails("does not match", "", "migrate")
	delete(c.env, "STILE_SECRET_FILE")

	os.Rename(keyFile, keyFile+".bak")
	c.fails("restore the file from your backup", "", "migrate")
	if _, err := os.Stat(keyFile); err == nil {
		t.Fatal("a database with a key check value got a new master key file")
	}
	os.Rename(keyFile+".bak", keyFile)
	c.ok("", "migrate") // restored, it works again

	c.fails("--secret-file (or STILE_SECRET_FILE) is required with PostgreSQL", "", "migrate", "--database", storagetest.Postgres(t))
	c.fails("unsupported URL", "", "migrate", "--database", "mysql://x")
}

// TestCLIThenSignIn is the README's path: an operator adds a client and a
// user with the CLI, and that user signs in to that client.
func TestCLIThenSignIn(t *testing.T) {
	dir := t.TempDir()
	dbURL := "sqlite:" + filepath.Join(dir, "stile.db")
	keyFile := filepath.Join(dir, "stile.key")
	os.WriteFile(keyFile, []byte("c3RpbGUgdGVzdCBtYXN0ZXIga2V5IDMyIGJ5dGVzISE=\n"), 0o600)
	c := &stileCmd{t: t, env: map[string]string{"STILE_DATABASE": dbURL, "STILE_SECRET_FILE": keyFile}}
	var cl map[string]any
	c.json(&cl, "", "client", "add", "--id", "cms", "--type", "web", "--redirect-uri", appRedirect, "--first-party", "--json")
	c.ok("a long passphrase\n", "user", "add", "--username", "dana", "--role", "author", "--password-stdin")
	var e map[string]string
	c.json(&e, "", "user", "totp", "dana", "--json")

	// The server runs over the same database and key file.
	s := startServerWithKey(t, dbURL, keyFile)
	f := &fixture{s: s, secret: cl["client_secret"].(string)}
	f.rp = newRP(t, s, "cms", f.secret, appRedirect)
	dana := &user{User: &storage.User{Username: "dana"}, password: "a long passphrase", totpSecret: e["secret"]}
	b := newBrowser(t, s)
	az := f.rp.authorize()
	tok, err := f.rp.exchange(f.signIn(t, b, az, dana), az.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if roles := toStrings(f.rp.idClaims(tok, az.nonce)["roles"]); strings.Join(roles, ",") != "author" {
		t.Fatalf("roles = %v, want the CLI's", roles)
	}
}
