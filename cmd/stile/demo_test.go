package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/demo"
	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestDemo is `make run`: the seeded demo user signs in through stile's
// pages to the demo client, which exchanges the code over HTTP and shows
// the claims.
func TestDemo(t *testing.T) {
	var first, seed *demoSeed
	s := startServer(t, storagetest.SQLite(t), func(c *appConfig) {
		env := &environment{db: c.DB, master: c.Master, sealer: keys.NewSealer(c.Master), log: c.Log}
		var err error
		if first, err = seedDemo(context.Background(), env, c.Issuer); err != nil {
			t.Fatal(err)
		}
		// A restart seeds again: a new password and client secret, the same TOTP secret.
		if seed, err = seedDemo(context.Background(), env, c.Issuer); err != nil {
			t.Fatal(err)
		}
		c.Demo = seed.config(c.Issuer, c.Log)
	})
	if seed.totp.Secret != first.totp.Secret || seed.totp.URL != first.totp.URL {
		t.Errorf("restart changed the demo TOTP secret: %s then %s", first.totp.Secret, seed.totp.Secret)
	}
	if seed.password == first.password {
		t.Error("restart kept the demo password; it should be new at every start")
	}

	var out bytes.Buffer
	seed.print(&out, s.URL)
	for _, want := range []string{seed.username, seed.password, seed.totp.Secret, seed.totp.URL, "█", s.URL + demo.LoginPath} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo banner lacks %q:\n%s", want, out.String())
		}
	}

	b := newBrowser(t, s)
	p := b.get(s.URL + demo.LoginPath)
	if p.url.Path != "/login" || !strings.Contains(p.body, "stile demo") {
		t.Fatalf("demo sign-in did not reach the login page: %s %d", p.url, p.status)
	}
	p = b.submit(p, map[string]string{"username": seed.username, "password": first.password})
	if p.status != http.StatusUnauthorized {
		t.Fatalf("the password from before the restart: status %d, want 401", p.status)
	}
	p = b.submit(p, map[string]string{"username": seed.username, "password": seed.password})
	u := &user{User: &storage.User{Username: seed.username}, totpSecret: seed.totp.Secret}
	p = b.submit(p, map[string]string{"otp": s.code(t, u)})
	if p.status != http.StatusOK || p.url.Path != demo.CallbackPath {
		t.Fatalf("after the code: %s status %d:\n%s", p.url, p.status, p.body)
	}
	for _, want := range []string{"You are signed in", `&#34;uid&#34;`, `&#34;roles&#34;`, "editor", `&#34;attributes&#34;`, "newsroom", `&#34;amr&#34;`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("demo page lacks %s:\n%s", want, p.body)
		}
	}
}

// TestREADMEBackendExample runs the README's backend example against a
// token from a real sign-in: it accepts it, and refuses it tampered with,
// for another audience, or for another issuer.
func TestREADMEBackendExample(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "validate-token")
	if out, err := exec.Command("go", "build", "-o", bin, "../../examples/validate-token").CombinedOutput(); err != nil {
		t.Fatalf("build the example: %v\n%s", err, out)
	}
	f := newFixture(t, storagetest.SQLite(t))
	b := newBrowser(t, f.s)
	az := f.rp.authorize()
	tok, err := f.rp.exchange(f.signIn(t, b, az, f.alice), az.verifier)
	if err != nil {
		t.Fatal(err)
	}
	validate := func(issuer, audience, token string) (string, error) {
		out, err := exec.Command(bin, "-issuer", issuer, "-audience", audience, token).CombinedOutput()
		return string(out), err
	}
	out, err := validate(f.s.URL, apiAudience, tok.AccessToken)
	if err != nil || !strings.Contains(out, `"uid":"`+f.alice.ID+`"`) || !strings.Contains(out, `"roles":["editor","reviewer"]`) {
		t.Fatalf("valid token refused: %v\n%s", err, out)
	}
	// A token whose exp has passed: stile's clock is stepped back so the
	// token it issues expires before the wall clock's now.
	f.s.clock.Advance(30 * time.Second)
	az = f.rp.authorize()
	code := f.signIn(t, newBrowser(t, f.s), az, f.alice)
	f.s.clock.Advance(-11 * time.Minute)
	_, body := rawToken(t, f.s, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {appRedirect}, "code_verifier": {az.verifier}}, "app", f.secret)
	expired, _ := body["access_token"].(string)
	if expired == "" {
		t.Fatalf("no token: %v", body)
	}
	parts := strings.Split(tok.AccessToken, ".")
	tampered := parts[0] + "." + strings.TrimRight(base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x","uid":"admin"}`)), "=") + "." + parts[2]
	for name, args := range map[string][3]string{
		"tampered":       {f.s.URL, apiAudience, tampered},
		"wrong audience": {f.s.URL, "https://other-api.example.com", tok.AccessToken},
		"wrong issuer":   {startServer(t, storagetest.SQLite(t)).URL, apiAudience, tok.AccessToken},
		"expired":        {f.s.URL, apiAudience, expired},
	} {
		if out, err := validate(args[0], args[1], args[2]); err == nil {
			t.Errorf("%s token accepted:\n%s", name, out)
		}
	}
}
