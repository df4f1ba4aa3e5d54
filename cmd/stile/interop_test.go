package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// interopDir holds the real clients the interop tests drive.
var interopDir = filepath.Join("..", "..", "testdata", "interop")

// TestInteropCMSBackends: a CMS-style backend validates stile's access
// tokens offline through the JWKS (refusing expired, wrong-audience,
// wrong-issuer and tampered tokens; a revoked JWT stays valid until it
// expires) and online through introspection (which also refuses revoked
// ones).
func TestInteropCMSBackends(t *testing.T) {
	bin := buildGo(t, "cms", filepath.Join(interopDir, "cms"))
	f := newFixture(t, storagetest.SQLite(t))
	apiSecret := f.s.addClient(t, &storage.Client{ID: "cms-api", Type: storage.ClientWeb, RedirectURIs: storage.Strings{"https://cms.example.com/unused"}})
	f.s.db.UpdateClient(t.Context(), "app", func(c *storage.Client) error {
		c.Audiences = storage.Strings{apiAudience, "cms-api"}
		return nil
	})
	jwks := startCMS(t, bin, "CMS_ISSUER="+f.s.URL, "CMS_AUDIENCE="+apiAudience, "CMS_MODE=jwks")
	introspect := startCMS(t, bin, "CMS_ISSUER="+f.s.URL, "CMS_MODE=introspect", "CMS_CLIENT_ID=cms-api", "CMS_CLIENT_SECRET="+apiSecret)
	otherAudience := startCMS(t, bin, "CMS_ISSUER="+f.s.URL, "CMS_AUDIENCE=https://other.example.com", "CMS_MODE=jwks")
	otherIssuer := startCMS(t, bin, "CMS_ISSUER="+startServer(t, storagetest.SQLite(t)).URL, "CMS_AUDIENCE="+apiAudience, "CMS_MODE=jwks")

	token := f.accessToken(t)
	for name, backend := range map[string]string{"jwks": jwks, "introspect": introspect} {
		status, body := callCMS(t, backend, token)
		if status != http.StatusOK || !strings.Contains(body, `"uid":"`+f.alice.ID+`"`) || !strings.Contains(body, `"editor"`) {
			t.Fatalf("%s backend, valid token: %d %s", name, status, body)
		}
	}
	parts := strings.Split(token, ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x","uid":"root","roles":["admin"]}`)) + "." + parts[2]
	for name, c := range map[string]struct{ backend, token string }{
		"tampered":       {jwks, forged},
		"wrong audience": {otherAudience, token},
		"wrong issuer":   {otherIssuer, token},
		"expired":        {jwks, f.expiredAccessToken(t)},
		"no token":       {jwks, ""},
	} {
		if status, body := callCMS(t, c.backend, c.token); status != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want 401", name, status, body)
		}
	}

	// Revoked: introspection refuses it at once; the JWKS check cannot know.
	if s := f.revoke(t, token, "access_token", "app", f.secret); s != http.StatusOK {
		t.Fatalf("revoke: %d", s)
	}
	if status, _ := callCMS(t, introspect, token); status != http.StatusUnauthorized {
		t.Errorf("introspection backend accepted a revoked token: %d", status)
	}
	if status, _ := callCMS(t, jwks, token); status != http.StatusOK {
		t.Errorf("JWKS backend and a revoked, unexpired JWT: %d; it cannot know, and the README says so", status)
	}
}

// expiredAccessToken is an access token whose exp has passed: stile's
// clock is stepped back for its issue.
func (f *fixture) expiredAccessToken(t *testing.T) string {
	t.Helper()
	f.nextStep()
	az := f.rp.authorize()
	code := f.signIn(t, newBrowser(t, f.s), az, f.alice)
	f.s.clock.Advance(-11 * time.Minute)
	defer f.s.clock.Advance(11 * time.Minute)
	_, body := rawToken(t, f.s, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {appRedirect}, "code_verifier": {az.verifier}}, "app", f.secret)
	tok, _ := body["access_token"].(string)
	if tok == "" {
		t.Fatalf("no token: %v", body)
	}
	return tok
}

func buildGo(t *testing.T, name, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, "./"+filepath.ToSlash(dir)).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// startCMS runs the backend with env and returns its base URL.
func startCMS(t *testing.T, bin string, env ...string) string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the backend did not start: %v", err)
	}
	return "http://" + strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
}

func callCMS(t *testing.T, base, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/me", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestInteropNativeLoopback: a native app, as AppAuth does it (RFC 8252),
// listens on an ephemeral loopback port, sends the user to stile with PKCE
// and a loopback redirect URI registered without a port, and receives the
// code there.
func TestInteropNativeLoopback(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t))
	f.s.addClient(t, &storage.Client{ID: "mobile", Type: storage.ClientNative, FirstParty: true,
		RedirectURIs: storage.Strings{"http://127.0.0.1/oauth2redirect"}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan url.Values, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query()
		fmt.Fprintln(w, "Signed in. You can close this window.")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	redirect := fmt.Sprintf("http://%s/oauth2redirect", ln.Addr())
	app := newRP(t, f.s, "mobile", "", redirect)
	az := app.authorize()
	b := newBrowser(t, f.s)
	p := b.submit(f.otpPage(t, b, az, f.alice), map[string]string{"otp": f.s.code(t, f.alice)})
	if p.status != http.StatusOK || !strings.Contains(p.body, "close this window") {
		t.Fatalf("the browser did not reach the app's loopback listener: %s %d", p.url, p.status)
	}
	q := <-got
	if q.Get("state") != az.state || q.Get("iss") != f.s.URL {
		t.Fatalf("loopback received %v", q)
	}
	tok, err := app.exchange(q.Get("code"), az.verifier)
	if err != nil {
		t.Fatalf("the public client's exchange with PKCE: %v", err)
	}
	app.idClaims(tok, az.nonce)
	// Without its verifier, a code intercepted on the device is worthless.
	az = app.authorize()
	b.get(az.url) // the SSO session answers; the browser lands on the app again
	q = <-got
	if _, err := app.exchange(q.Get("code"), ""); err == nil {
		t.Fatal("a code redeemed without the PKCE verifier")
	}
}

// TestInteropOpenIDClient: panva's openid-client, an OpenID-certified
// relying party, as a confidential server-side application: discovery,
// PKCE, nonce, state, iss, the code exchange, ID token validation,
// userinfo, refresh, introspection and revocation.
func TestInteropOpenIDClient(t *testing.T) {
	node := needNode(t)
	f := newFixture(t, storagetest.SQLite(t))
	const redirect = "https://webapp.example.com/callback"
	secret := f.s.addClient(t, &storage.Client{ID: "webapp", Name: "Web App", Type: storage.ClientWeb, RequirePKCE: true,
		RedirectURIs: storage.Strings{redirect}, GrantTypes: storage.Strings{storage.GrantAuthorizationCode, storage.GrantRefreshToken}})

	cmd := exec.Command(node, filepath.Join(interopDir, "openid-client", "rp.mjs"))
	cmd.Env = append(os.Environ(), "ISSUER="+f.s.URL, "CLIENT_ID=webapp", "CLIENT_SECRET="+secret, "REDIRECT_URI="+redirect)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	out := json.NewDecoder(stdout)
	var first struct{ Authorize, Error string }
	if err := out.Decode(&first); err != nil || first.Error != "" {
		t.Fatalf("openid-client: %v %s", err, first.Error)
	}
	// The browser part: sign in (and consent: the client is a third party).
	b := newBrowser(t, f.s)
	p := b.get(first.Authorize)
	p = b.submit(b.submit(p, map[string]string{"username": "alice", "password": f.alice.password}), map[string]string{"otp": f.s.code(t, f.alice)})
	loc := b.submit(p, map[string]string{"decision": "allow"}).location(t)
	fmt.Fprintln(stdin, loc.String())

	var res struct {
		Result struct {
			Claims, Userinfo, RefreshedClaims, Introspection, IntrospectionAfter map[string]any
			Rotated                                                              bool
			RefreshAfterRevocation                                               string
		}
		Error string
	}
	if err := out.Decode(&res); err != nil || res.Error != "" {
		t.Fatalf("openid-client: %v %s", err, res.Error)
	}
	r := res.Result
	if r.Claims["sub"] != f.alice.ID || r.Claims["uid"] != f.alice.ID || r.Userinfo["preferred_username"] != "alice" {
		t.Errorf("claims %v, userinfo %v", r.Claims, r.Userinfo)
	}
	if !r.Rotated || r.RefreshedClaims["auth_time"] != r.Claims["auth_time"] || r.RefreshedClaims["sub"] != f.alice.ID {
		t.Errorf("refresh: rotated %v, refreshed ID token %v", r.Rotated, r.RefreshedClaims)
	}
	if r.Introspection["active"] != true || r.Introspection["client_id"] != "webapp" || r.IntrospectionAfter["active"] != false {
		t.Errorf("introspection before %v, after revocation %v", r.Introspection, r.IntrospectionAfter)
	}
	if r.RefreshAfterRevocation != "invalid_grant" {
		t.Errorf("refresh after revocation: %s, want invalid_grant", r.RefreshAfterRevocation)
	}
}

// needNode finds node and the interop packages; their absence is a
// failure that says how to fix it, never a skip.
func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed for the interop tests: install Node.js 20 or later")
	}
	if _, err := os.Stat(filepath.Join(interopDir, "node_modules", "openid-client")); err != nil {
		t.Fatal("the interop clients are not installed: run (cd testdata/interop && npm ci)")
	}
	return node
}

// needChromium finds Debian's Chromium, which playwright-core drives.
func needChromium(t *testing.T) string {
	t.Helper()
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Chromium is needed for the browser tests: apt-get install chromium (or set CHROMIUM): %v", err)
	}
	return chromium
}

// TestInteropSPA: a public single-page app on oidc-client-ts, in Debian's
// headless Chromium driven by playwright-core, served from another site
// than stile (the SPA on 127.0.0.1, stile on localhost), so the browser's
// cross-site rules apply as in production: sign-in through stile's pages,
// renewal with a refresh token, sign-out.
func TestInteropSPA(t *testing.T) {
	chromium := needChromium(t)
	s := launch(t, storagetest.SQLite(t), launchOptions{host: "localhost"})
	alice := s.addUser(t, "alice", true)
	spa := serveSPA(t, s.URL, "spa")
	s.addClient(t, &storage.Client{ID: "spa", Name: "The SPA", Type: storage.ClientSPA, FirstParty: true,
		RedirectURIs: storage.Strings{spa + "/"}, PostLogoutRedirectURIs: storage.Strings{spa + "/signed-out"},
		WebOrigins: storage.Strings{spa}, GrantTypes: storage.Strings{storage.GrantAuthorizationCode, storage.GrantRefreshToken}})

	var r struct {
		LoginURL, AgainAt            string
		SignedIn, Renewed, SignedOut map[string]any
	}
	runNode(t, filepath.Join("spa", "drive.mjs"), &r, "SPA_URL="+spa+"/", "USERNAME=alice", "PASSWORD="+alice.password,
		"OTP="+s.code(t, alice), "CHROMIUM="+chromium)
	if !strings.HasPrefix(r.LoginURL, s.URL+"/login") {
		t.Errorf("the sign-in went to %s, not stile's login page", r.LoginURL)
	}
	if r.SignedIn["uid"] != alice.ID || r.SignedIn["hasRefreshToken"] != true || strings.Join(toStrings(r.SignedIn["roles"]), ",") != "editor,reviewer" {
		t.Errorf("signed in: %v", r.SignedIn)
	}
	if r.Renewed["status"] != "renewed" || r.Renewed["accessToken"] == r.SignedIn["accessToken"] || r.Renewed["uid"] != alice.ID {
		t.Errorf("renewed: %v", r.Renewed)
	}
	if r.SignedOut["status"] != "signed out" || !strings.HasPrefix(r.AgainAt, s.URL+"/login") {
		t.Errorf("signed out: %v, then signing in again went to %s", r.SignedOut, r.AgainAt)
	}
}

// serveSPA serves the SPA on 127.0.0.1 (another site than stile's
// localhost) with its configuration, and returns its origin.
func serveSPA(t *testing.T, issuer, clientID string) string {
	t.Helper()
	dir := filepath.Join(interopDir, "spa")
	mux := http.NewServeMux()
	mux.HandleFunc("/config.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprintf(w, "window.STILE = %s\n", mustJSON(map[string]string{"authority": issuer, "client_id": clientID}))
	})
	mux.HandleFunc("/oidc-client-ts.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(interopDir, "node_modules", "oidc-client-ts", "dist", "browser", "oidc-client-ts.min.js"))
	})
	mux.HandleFunc("/app.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, filepath.Join(dir, "app.js")) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, filepath.Join(dir, "index.html")) })
	return serveElsewhere(t, mux)
}

// serveElsewhere serves h on 127.0.0.1, another site than stile's
// localhost, and returns its origin.
func serveElsewhere(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// runNode runs a script of testdata/interop with env added and decodes its
// one line of output, {"result": …} or {"error": …}, into result.
func runNode(t *testing.T, script string, result any, env ...string) {
	t.Helper()
	cmd := exec.Command(needNode(t), filepath.Join(interopDir, script))
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var res struct {
		Result json.RawMessage
		Error  string
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil || err != nil || res.Error != "" {
		t.Fatalf("%s failed: %v %v %s\n%s", script, err, jerr, res.Error, out)
	}
	if err := json.Unmarshal(res.Result, result); err != nil {
		t.Fatalf("%s: %v in %s", script, err, res.Result)
	}
}
