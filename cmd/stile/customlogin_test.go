package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stile-id/stile"
	"github.com/stile-id/stile/demo"
	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// customLoginRun is what testdata/interop/custom-login.mjs reports.
type customLoginRun struct {
	LoginURL, Prompt, At, Body, Message string
	ConsoleErrors                       []string
}

// serveCustomLogin serves the example custom login page on another site
// than stile, as a CMS front end would, with its config.js and a page for
// the client's redirect URI (/cb). It returns the site's origin.
func serveCustomLogin(t *testing.T, issuer string) string {
	mux := http.NewServeMux()
	mux.HandleFunc("/config.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprintf(w, "window.STILE = %s\n", mustJSON(map[string]string{"issuer": issuer}))
	})
	mux.HandleFunc("/cb", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "<!doctype html><title>Back</title><p>Back at the application.</p>")
	})
	mux.Handle("/", http.FileServerFS(stile.CustomLoginPage()))
	return serveElsewhere(t, mux)
}

// TestCustomLoginPage signs in through the example custom login page in
// headless Chromium: served from another site than stile (127.0.0.1 and
// localhost), it calls the JSON login API cross-origin, and the sign-in
// ends with the client's code; the same page on an origin the client has
// not registered cannot call the API. In --demo mode stile serves the page
// itself at /demo/custom-login/.
func TestCustomLoginPage(t *testing.T) {
	chromium := needChromium(t)
	s := launch(t, storagetest.SQLite(t), launchOptions{host: "localhost"})
	alice := s.addUser(t, "alice", true)
	site, foreign := serveCustomLogin(t, s.URL), serveCustomLogin(t, s.URL)
	secret := s.addClient(t, &storage.Client{ID: "cms", Name: "Headless CMS", Type: storage.ClientWeb, FirstParty: true,
		RedirectURIs: storage.Strings{site + "/cb"}, RequirePKCE: true, LoginURL: site + "/", WebOrigins: storage.Strings{site}})
	cms := newRP(t, s, "cms", secret, site+"/cb")

	t.Run("AnotherSite", func(t *testing.T) {
		az := cms.authorize()
		var r customLoginRun
		runNode(t, "custom-login.mjs", &r, "START_URL="+az.url, "DONE_PREFIX="+site+"/cb", "USERNAME=alice",
			"PASSWORD="+alice.password, "OTP="+s.code(t, alice), "CHROMIUM="+chromium)
		if lu, _ := url.Parse(r.LoginURL); !strings.HasPrefix(r.LoginURL, site+"/?authRequestID=") || lu.Query().Get("loginToken") == "" {
			t.Errorf("stile handed the sign-in to %s, want the client's login page with authRequestID and loginToken", r.LoginURL)
		}
		if !strings.Contains(r.Prompt, "authenticator") {
			t.Errorf("the code step said %q", r.Prompt)
		}
		at, _ := url.Parse(r.At)
		if at.Query().Get("state") != az.state || at.Query().Get("iss") != s.URL {
			t.Fatalf("the sign-in ended at %s", r.At)
		}
		tok, err := cms.exchange(at.Query().Get("code"), az.verifier)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if c := cms.idClaims(tok, az.nonce); c["uid"] != alice.ID || c["sub"] != alice.ID {
			t.Errorf("ID token claims: %v", c)
		}
		if len(r.ConsoleErrors) > 0 {
			t.Errorf("the page logged errors: %v", r.ConsoleErrors)
		}
	})

	t.Run("UnregisteredOrigin", func(t *testing.T) {
		var r customLoginRun
		before := len(s.logs.String())
		runNode(t, "custom-login.mjs", &r, "START_URL="+cms.authorize().url, "FOREIGN="+foreign+"/", "USERNAME=alice",
			"PASSWORD="+alice.password, "CHROMIUM="+chromium)
		if !strings.HasPrefix(r.At, foreign+"/") || !strings.Contains(r.Message, "web origin") {
			t.Errorf("from an unregistered origin the page is at %s and says %q; want it to stay and say the origin is not registered", r.At, r.Message)
		}
		// The browser asked first (the preflight) and, refused, never sent the password.
		log := s.logs.String()[before:]
		if !strings.Contains(log, "method=OPTIONS path=/login/api/authenticate") || strings.Contains(log, "method=POST path=/login/api/authenticate") {
			t.Errorf("want a refused preflight and no password call from an unregistered origin:\n%s", log)
		}
	})
}

// TestCustomLoginDemo: `stile serve --demo` serves the example page for
// its second demo client, which signs in through it.
func TestCustomLoginDemo(t *testing.T) {
	chromium := needChromium(t)
	var seed *demoSeed
	s := launch(t, storagetest.SQLite(t), launchOptions{host: "localhost", app: []func(*appConfig){func(c *appConfig) {
		env := &environment{db: c.DB, master: c.Master, sealer: keys.NewSealer(c.Master), log: c.Log}
		var err error
		if seed, err = seedDemo(context.Background(), env, c.Issuer); err != nil {
			t.Fatal(err)
		}
		c.Demo = seed.config(c.Issuer, c.Log)
	}}})
	otp, err := login.TOTPCode(seed.totp.Secret, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	var r customLoginRun
	runNode(t, "custom-login.mjs", &r, "START_URL="+s.URL+demo.CustomStartPath, "DONE_PREFIX="+s.URL+demo.CustomCallbackPath,
		"USERNAME="+seed.username, "PASSWORD="+seed.password, "OTP="+otp, "CHROMIUM="+chromium)
	if !strings.HasPrefix(r.LoginURL, s.URL+demo.CustomLoginPath+"?authRequestID=") {
		t.Errorf("the demo sign-in went to %s, want the custom login page", r.LoginURL)
	}
	if !strings.Contains(r.Body, "You are signed in") || !strings.Contains(r.Body, `"uid"`) || len(r.ConsoleErrors) > 0 {
		t.Errorf("the demo ended with %s (console errors %v):\n%s", r.At, r.ConsoleErrors, r.Body)
	}
}
