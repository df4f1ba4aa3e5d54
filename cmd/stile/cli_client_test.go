package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
)

// openEnv opens the CLI's database with its master key, as the server does.
func (c *stileCmd) openEnv(t *testing.T) *environment {
	t.Helper()
	cl := &cli{stderr: new(strings.Builder), database: c.env["STILE_DATABASE"], secretFile: c.env["STILE_SECRET_FILE"]}
	env, err := cl.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	return env
}

func TestCLIClientSecrets(t *testing.T) {
	const given = "an operator chosen secret of enough length"
	c := newCLI(t)
	var cl map[string]any
	c.json(&cl, "", "client", "add", "--id", "cms", "--type", "web", "--redirect-uri", "https://cms.example.com/cb", "--json")
	first, _ := cl["client_secret"].(string)
	env := c.openEnv(t)
	stored := func(id, secret string) bool {
		got, err := env.db.GetClient(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return secret != "" && bytes.Equal(got.SecretHash, op.SecretDigest(op.SecretKey(env.master), secret))
	}
	if !stored("cms", first) {
		t.Fatal("the printed secret is not the stored one")
	}

	c.json(&cl, given+"\n", "client", "update", "cms", "--secret-stdin", "--json")
	if cl["client_secret"] != given || !stored("cms", given) || stored("cms", first) {
		t.Fatalf("update --secret-stdin = %v", cl)
	}
	c.json(&cl, "", "client", "update", "cms", "--name", "CMS", "--json")
	if cl["client_secret"] != nil || !stored("cms", given) {
		t.Fatalf("an update without secret flags changed or showed the secret: %v", cl)
	}

	c.fails("--secret-stdin", given+"\n", "client", "add", "--id", "spa", "--type", "spa", "--redirect-uri", "https://spa.example.com/cb", "--secret-stdin")
	c.ok("", "client", "add", "--id", "spa", "--type", "spa", "--redirect-uri", "https://spa.example.com/cb")
	if _, err := c.run("", "client", "update", "spa", "--rotate-secret"); err == nil || !strings.HasPrefix(err.Error(), "--rotate-secret:") {
		t.Errorf("client update spa --rotate-secret: err = %v, want one led by the flag", err)
	}
	c.fails("--secret-stdin", given+"\n", "client", "update", "spa", "--secret-stdin")

	// A public client that becomes confidential gets a secret, and back.
	c.json(&cl, "", "client", "update", "spa", "--type", "web", "--json")
	if s, _ := cl["client_secret"].(string); !stored("spa", s) || cl["auth_method"] != "client_secret_basic" {
		t.Fatalf("spa to web = %v", cl)
	}
	c.json(&cl, "", "client", "update", "cms", "--type", "native", "--json")
	if got, _ := env.db.GetClient(context.Background(), "cms"); got.SecretHash != nil || cl["auth_method"] != "none" {
		t.Fatalf("web to native kept its secret: %v", cl)
	}
}

func TestCLIClientFlags(t *testing.T) {
	c := newCLI(t)
	var cl map[string]any
	c.json(&cl, "", "client", "add", "--id", "app", "--type", "native", "--redirect-uri", "http://127.0.0.1/cb", "--json")
	if strings.Join(toStrings(cl["grant_types"]), ",") != "authorization_code" || cl["refresh_token_idle"] != float64(0) {
		t.Fatalf("client add defaults = %v", cl)
	}
	if out := c.ok("", "client", "show", "app"); !strings.Contains(out, "refresh token absolute     server default") {
		t.Errorf("client show text:\n%s", out)
	}

	c.fails("--refresh-token-absolute", "", "client", "update", "app", "--refresh-token-absolute", "-1h")
	c.json(&cl, "", "client", "update", "app", "--grant-type", "refresh_token", "--refresh-token-absolute", "720h", "--json")
	if strings.Join(toStrings(cl["grant_types"]), ",") != "authorization_code,refresh_token" ||
		cl["refresh_token_absolute"] != float64(720*3600) || cl["refresh_token_idle"] != float64(0) {
		t.Fatalf("client update with refresh tokens = %v", cl)
	}
	if out := c.ok("", "client", "show", "app"); !strings.Contains(out, "refresh token absolute     720h0m0s") ||
		!strings.Contains(out, `["authorization_code","refresh_token"]`) {
		t.Errorf("client show text:\n%s", out)
	}
	c.json(&cl, "", "client", "update", "app", "--grant-type", "authorization_code", "--json")
	if strings.Join(toStrings(cl["grant_types"]), ",") != "authorization_code" || cl["refresh_token_absolute"] != float64(720*3600) {
		t.Fatalf("client update dropping refresh tokens = %v", cl)
	}

	c.fails("--post-logout-redirect-uri", "", "client", "update", "app", "--post-logout-redirect-uri", "bye")
	c.ok("", "client", "update", "app", "--post-logout-redirect-uri", "http://127.0.0.1/bye")
	c.fails("--web-origin", "", "client", "update", "app", "--web-origin", "https://app.example.com/path")
	c.ok("", "client", "update", "app", "--web-origin", "https://app.example.com")
	c.fails("--login-url", "", "client", "update", "app", "--login-url", "/login")
	c.fails("--access-token-format", "", "client", "update", "app", "--access-token-format", "paseto")
	c.fails("--redirect-uri", "", "client", "update", "app", "--redirect-uri", "cb")
	c.json(&cl, "", "client", "update", "app", "--login-url", "https://app.example.com/login", "--json")
	if cl["login_url"] != "https://app.example.com/login" || strings.Join(toStrings(cl["web_origins"]), ",") != "https://app.example.com" {
		t.Fatalf("client update = %v", cl)
	}
}

func TestCLIClientRemove(t *testing.T) {
	c := newCLI(t)
	for _, id := range []string{"gone", "kept"} {
		c.ok("", "client", "add", "--id", id, "--type", "spa", "--redirect-uri", "https://"+id+".example.com/cb")
	}
	c.ok("", "user", "add", "--username", "alice")
	db := c.store(t)
	ctx := context.Background()
	alice, _ := db.GetUserByUsername(ctx, "alice")
	grants := map[string]signedIn{}
	for _, id := range []string{"gone", "kept"} {
		if err := db.SaveConsent(ctx, alice.ID, id, []string{"openid"}); err != nil {
			t.Fatal(err)
		}
		grants[id] = signIn(t, db, "alice", id)
	}

	var out map[string]any
	c.json(&out, "", "client", "remove", "gone", "--json")
	if out["client_id"] != "gone" || out["removed"] != true {
		t.Errorf("client remove --json = %v", out)
	}
	_, err1 := db.GetConsent(ctx, alice.ID, "gone")
	_, err2 := db.GetRefreshToken(ctx, grants["gone"].refresh)
	_, err3 := db.GetAccessToken(ctx, grants["gone"].access)
	for _, err := range []error{err1, err2, err3} {
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("after client remove: %v, want not found", err)
		}
	}
	if _, err := db.GetConsent(ctx, alice.ID, "kept"); err != nil {
		t.Errorf("the other client's consent: %v", err)
	}
	if got := grants["kept"].ended(t, db); !strings.Contains(got, "refresh revoked false, access revoked false") {
		t.Errorf("the other client's tokens: %s", got)
	}
	c.fails(`no client "gone"`, "", "client", "remove", "gone")
	if text := c.ok("", "client", "remove", "kept"); !strings.Contains(text, "removed client kept") {
		t.Errorf("client remove text: %q", text)
	}
}

func TestCLIKeysRotateText(t *testing.T) {
	c := newCLI(t)
	c.openDB(t)
	out := c.ok("", "keys", "rotate", "--activate-after", "2h")
	var list []map[string]any
	c.json(&list, "", "keys", "list", "--json")
	var next map[string]any
	for _, k := range list {
		if k["state"] == "next" {
			next = k
		}
	}
	signs, err := time.Parse(time.RFC3339, fmt.Sprint(next["activate_after"]))
	if err != nil || time.Until(signs) < 119*time.Minute || time.Until(signs) > 2*time.Hour {
		t.Fatalf("next key = %v, want it to sign in 2h", next)
	}
	for _, want := range []string{next["kid"].(string), "starts signing", "until every token it signed has expired"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys rotate text lacks %q:\n%s", want, out)
		}
	}
	c.fails("stile keys list", "", "keys", "rotate")
	if out := c.ok("", "keys", "list"); !strings.Contains(out, "RETIRED") || !strings.Contains(out, next["kid"].(string)) {
		t.Errorf("keys list text:\n%s", out)
	}
}

// TestCLIClientAPIKey: --headless gives a web client a direct-mode apiKey,
// printed once; --rotate-api-key replaces it; turning the mode off voids
// it, and a rotation is then refused; a public or third-party client
// cannot have one.
func TestCLIClientAPIKey(t *testing.T) {
	c := newCLI(t)
	env := c.openEnv(t)
	keyID := func() storage.NullString {
		got, err := env.db.GetClient(context.Background(), "cms")
		if err != nil {
			t.Fatal(err)
		}
		return got.APIKeyID
	}
	var cl map[string]any
	c.json(&cl, "", "client", "add", "--id", "cms", "--type", "web", "--redirect-uri", "https://cms.example.com/cb", "--json")
	if cl["api_key"] != nil || keyID().Valid {
		t.Fatalf("a client without --headless got an apiKey: %v", cl)
	}
	c.fails("--headless", "", "client", "update", "cms", "--headless") // a third-party client
	c.json(&cl, "", "client", "update", "cms", "--first-party", "--json")
	if cl["api_key"] != nil || keyID().Valid {
		t.Fatalf("a client without --headless got an apiKey: %v", cl)
	}
	c.json(&cl, "", "client", "update", "cms", "--headless", "--json")
	first, _ := cl["api_key"].(string)
	if id := keyID(); !id.Valid || !strings.HasPrefix(first, "stile_"+id.String+"_") {
		t.Fatalf("--headless printed %q for stored key id %v", first, id)
	}
	c.json(&cl, "", "client", "update", "cms", "--name", "CMS", "--json")
	if cl["api_key"] != nil || !strings.HasPrefix(first, "stile_"+keyID().String+"_") {
		t.Fatalf("an unrelated update showed or changed the apiKey: %v", cl)
	}
	c.json(&cl, "", "client", "update", "cms", "--rotate-api-key", "--json")
	if second, _ := cl["api_key"].(string); second == "" || second == first || !strings.HasPrefix(second, "stile_"+keyID().String+"_") {
		t.Fatalf("--rotate-api-key printed %q after %q", second, first)
	}
	c.ok("", "client", "update", "cms", "--headless=false")
	if keyID().Valid {
		t.Fatal("turning the direct mode off kept the apiKey")
	}
	c.fails("--rotate-api-key", "", "client", "update", "cms", "--rotate-api-key")
	c.fails("--headless", "", "client", "add", "--id", "spa", "--type", "spa", "--redirect-uri", "https://spa.example.com/cb", "--headless")
}

// TestCLIRolePolicies: set, list and clear a role's enrolment policy, and
// the errors that say what is wrong.
func TestCLIRolePolicies(t *testing.T) {
	c := newCLI(t)
	c.fails("use one of [refuse email sms", "", "role", "set-policy", "staff", "sometimes")
	c.fails(`role "staff" has no enrolment policy`, "", "role", "clear-policy", "staff")
	c.ok("", "role", "set-policy", "staff", "sms-then-totp")
	c.ok("", "role", "set-policy", "admin", "refuse")
	var list []map[string]any
	c.json(&list, "", "role", "list", "--json")
	if len(list) != 2 || list[0]["role"] != "admin" || list[1]["enrollment_policy"] != "sms-then-totp" {
		t.Fatalf("role list = %v", list)
	}
	c.ok("", "role", "clear-policy", "admin")
	c.json(&list, "", "role", "list", "--json")
	if len(list) != 1 || list[0]["role"] != "staff" {
		t.Fatalf("after clear-policy: %v", list)
	}
}

// The sign-in switches of issue 12 are off by default, set and cleared by
// their flags, shown by client show, and refused where they make no sense.
func TestCLIClientSwitches(t *testing.T) {
	c := newCLI(t)
	var cl map[string]any
	c.json(&cl, "", "client", "add", "--id", "app", "--type", "native", "--redirect-uri", "http://127.0.0.1/cb", "--json")
	if cl["first_party_app"] != false || cl["passwordless"] != false || cl["signup"] != false ||
		len(toStrings(cl["signup_roles"])) != 0 || len(cl["signup_attributes"].(map[string]any)) != 0 {
		t.Fatalf("a new client's switches = %v, want all off", cl)
	}
	c.fails("first_party_app", "", "client", "update", "app", "--first-party-app")
	c.fails("--signup-attribute", "", "client", "update", "app", "--signup-attribute", "plan")
	c.json(&cl, "", "client", "update", "app", "--first-party", "--first-party-app", "--passwordless", "--signup",
		"--signup-role", "member", "--signup-role", "reader", "--signup-attribute", "plan=free", "--signup-attribute", "seats=3", "--json")
	attrs, _ := cl["signup_attributes"].(map[string]any)
	if cl["first_party_app"] != true || cl["passwordless"] != true || cl["signup"] != true ||
		strings.Join(toStrings(cl["signup_roles"]), ",") != "member,reader" || attrs["plan"] != "free" || attrs["seats"] != float64(3) {
		t.Fatalf("client update with the switches = %v", cl)
	}
	if out := c.ok("", "client", "show", "app"); !strings.Contains(out, `["member","reader"]`) ||
		!strings.Contains(out, `{"plan":"free","seats":3}`) {
		t.Errorf("client show text:\n%s", out)
	}
	c.json(&cl, "", "client", "update", "app", "--passwordless=false", "--signup-role", "", "--signup-attribute", "", "--json")
	if cl["passwordless"] != false || cl["first_party_app"] != true || len(toStrings(cl["signup_roles"])) != 0 ||
		len(cl["signup_attributes"].(map[string]any)) != 0 {
		t.Fatalf("clearing the switches = %v", cl)
	}
}
