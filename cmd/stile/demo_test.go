package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/stile-id/stile/demo"
	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// resultKept is how long the demo client keeps a callback page for a reload.
const resultKept = 10 * time.Minute

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

// demoServer runs stile as `stile serve --demo` does (on the host given, ""
// for 127.0.0.1), the demo client's clock the server's.
func demoServer(t *testing.T, dbURL, host string) (*server, *demoSeed) {
	t.Helper()
	var seed *demoSeed
	s := launch(t, dbURL, launchOptions{host: host, app: []func(*appConfig){func(c *appConfig) {
		env := &environment{db: c.DB, master: c.Master, sealer: keys.NewSealer(c.Master), log: c.Log}
		var err error
		if seed, err = seedDemo(context.Background(), env, c.Issuer); err != nil {
			t.Fatal(err)
		}
		c.Demo = seed.config(c.Issuer, c.Log)
		c.Demo.Now = c.Now
	}}})
	return s, seed
}

// demoSignIn signs the demo user in to the demo client through stile's
// pages and returns the callback page.
func demoSignIn(t *testing.T, s *server, seed *demoSeed, b *browser) *page {
	t.Helper()
	p := b.submit(b.get(s.URL+demo.LoginPath), map[string]string{"username": seed.username, "password": seed.password})
	p = b.submit(p, map[string]string{"otp": s.code(t, &user{User: &storage.User{}, totpSecret: seed.totp.Secret})})
	if p.status != http.StatusOK || p.url.Path != demo.CallbackPath || !strings.Contains(p.body, "You are signed in") {
		t.Fatalf("demo sign-in ended at %s, status %d:\n%s", p.url, p.status, p.body)
	}
	return p
}

// pre is the text of the page's <pre id=...>, unescaped.
func pre(t *testing.T, p *page, id string) string {
	t.Helper()
	m := regexp.MustCompile(`<pre id="` + id + `"[^>]*>([^<]*)</pre>`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no <pre id=%q> on %s:\n%s", id, p.url, p.body)
	}
	return html.UnescapeString(m[1])
}

var backendExport = regexp.MustCompile(`(?m)^  (export DEMO_BACKEND_ID=(\S+) DEMO_BACKEND_SECRET=(\S+))$`)

// TestDemoBackend is the README's token examples as pasted, on both
// databases: the export line --demo prints, the callback page's
// export ACCESS_TOKEN line and its curl command, run by a real shell and
// curl, introspect the demo user's token as the backend client; a wrong
// secret learns nothing; the token validates (independently, with go-oidc)
// for the audience demo-backend and still for demo, and for no other.
func TestDemoBackend(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is needed to run the demo page's command as pasted: apt-get install curl")
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { testDemoBackend(t, d.URL(t), curl) })
	}
}

func testDemoBackend(t *testing.T, dbURL, curl string) {
	s, seed := demoServer(t, dbURL, "")
	var out bytes.Buffer
	seed.print(&out, s.URL)
	want := "Backend client, for the README's token examples (paste into your shell):\n\n" +
		"  export DEMO_BACKEND_ID=demo-backend DEMO_BACKEND_SECRET=" + seed.backend.Secret + "\n"
	if !strings.Contains(out.String(), "\n\n"+want) || !strings.Contains(out.String(), s.URL+demo.CustomStartPath+"\n\n"+want) {
		t.Fatalf("the banner lacks the backend block after the sign-in lines:\n%s", out.String())
	}
	m := backendExport.FindStringSubmatch(out.String())
	if m == nil || m[2] != demoBackendID || len(m[3]) < 43 {
		t.Fatalf("no export line for the backend client:\n%s", out.String())
	}
	exportBackend := m[1]

	p := demoSignIn(t, s, seed, newBrowser(t, s))
	token := pre(t, p, "raw-access-token")
	exportAccess := pre(t, p, "export-access-token")
	if exportAccess != "export ACCESS_TOKEN='"+token+"'" || strings.Count(token, ".") != 2 {
		t.Fatalf("the page's export line %q is not the token %q", exportAccess, token)
	}
	introspect := pre(t, p, "introspect-command")
	if introspect != `curl -s -u "$DEMO_BACKEND_ID:$DEMO_BACKEND_SECRET" -d token="$ACCESS_TOKEN" `+s.URL+"/oauth/introspect" {
		t.Fatalf("the page's introspection command: %s", introspect)
	}

	// What a newcomer pastes: the banner's line, the page's two lines.
	shell := func(exports ...string) []byte {
		t.Helper()
		cmd := exec.Command("sh", "-c", strings.Join(append(exports, introspect), "\n"))
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(curl)+":/usr/bin:/bin")
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("the pasted commands: %v\n%s", err, b)
		}
		return b
	}
	u, err := s.db.GetUserByUsername(context.Background(), demoUsername)
	if err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if out := shell(exportBackend, exportAccess); json.Unmarshal(out, &res) != nil {
		t.Fatalf("introspection as the backend client, not JSON: %s", out)
	}
	roles, _ := res["roles"].([]any)
	if res["active"] != true || res["uid"] != u.ID || !slices.Contains(anyStrings(roles), "editor") || res["client_id"] != demoClientID {
		t.Fatalf("introspection as the backend client: %v", res)
	}
	// The negative control: the same commands with a wrong secret (a 401,
	// whose body another change turns into RFC 6749 JSON).
	wrong := strings.Replace(exportBackend, seed.backend.Secret, op.NewClientSecret(), 1)
	if out := shell(wrong, exportAccess); strings.Contains(string(out), `"active":true`) || strings.Contains(string(out), u.ID) {
		t.Errorf("introspection with a wrong secret answered %s", out)
	}

	provider, err := oidc.NewProvider(context.Background(), s.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, aud := range []string{demoBackendID, demoClientID, "other-api"} {
		_, err := provider.Verifier(&oidc.Config{ClientID: aud}).Verify(context.Background(), token)
		if (err == nil) != (aud != "other-api") {
			t.Errorf("validation for the audience %s: %v", aud, err)
		}
	}
}

// demoErrorPage checks a demo error page: stile's look, the demo's own
// words, none of the library's or Go's, and a way to sign in again.
func demoErrorPage(t *testing.T, p *page, status int, title, again string) {
	t.Helper()
	if p.status != status || !strings.Contains(p.body, "<h1>"+title+"</h1>") || !strings.Contains(p.body, `class="error"`) ||
		!strings.Contains(p.body, `href="/login/static/style.css"`) || !strings.Contains(p.body, `href="`+again+`">Sign in again</a>`) ||
		!strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
		t.Errorf("%s: status %d, want %d and a styled %q page linking %s:\n%s", p.url, p.status, status, title, again, p.body)
	}
	for _, bad := range []string{"named cookie", "failed to", "http:", "Parent=", "ErrorType"} {
		if strings.Contains(p.body, bad) {
			t.Errorf("%s shows %q:\n%s", p.url, bad, p.body)
		}
	}
}

// TestDemoCallbackReload: reloading the callback page after a sign-in
// shows the same result again (the demo kept it, for this browser); the
// same address in another browser, or after the demo forgot it, is a
// styled page that says the sign-in is over, with a way to sign in again;
// so is a refusal from stile and a stale custom-login callback.
func TestDemoCallbackReload(t *testing.T) {
	s, seed := demoServer(t, storagetest.SQLite(t), "")
	b := newBrowser(t, s)
	first := demoSignIn(t, s, seed, b)
	token := pre(t, first, "raw-access-token")

	again := b.get(first.url.String())
	if again.status != http.StatusOK || pre(t, again, "raw-access-token") != token ||
		pre(t, again, "export-access-token") != "export ACCESS_TOKEN='"+token+"'" {
		t.Fatalf("reload: status %d:\n%s", again.status, again.body)
	}
	for _, bad := range []string{"named cookie", "failed to", "http: "} {
		if strings.Contains(again.body, bad) {
			t.Errorf("the reloaded page shows %q", bad)
		}
	}
	// Another browser (no state cookie, no kept result): the sign-in is over.
	demoErrorPage(t, newBrowser(t, s).get(first.url.String()), http.StatusBadRequest, "This sign-in is over", demo.LoginPath)
	// The same browser, at an address it did not see: over too.
	other := *first.url
	other.RawQuery += "&x=1"
	demoErrorPage(t, b.get(other.String()), http.StatusBadRequest, "This sign-in is over", demo.LoginPath)
	// Still kept before its time, forgotten after it.
	s.clock.Advance(resultKept - time.Second)
	if p := b.get(first.url.String()); p.status != http.StatusOK || pre(t, p, "raw-access-token") != token {
		t.Fatalf("reload before the result expired: status %d", p.status)
	}
	s.clock.Advance(2 * time.Second)
	demoErrorPage(t, b.get(first.url.String()), http.StatusBadRequest, "This sign-in is over", demo.LoginPath)

	// stile refuses (the person cancelled): its error code, the demo's words.
	b2 := newBrowser(t, s)
	b2.noFollow = true
	start := b2.get(s.URL + demo.LoginPath).location(t)
	b2.noFollow = false
	refused := b2.get(s.URL + demo.CallbackPath + "?" + url.Values{"error": {"access_denied"},
		"error_description": {"ErrorType=access_denied Parent=user cancelled"}, "state": {start.Query().Get("state")}}.Encode())
	demoErrorPage(t, refused, http.StatusBadRequest, "Sign-in not completed", demo.LoginPath)
	if !strings.Contains(refused.body, "cancelled or refused") || !strings.Contains(refused.body, "<code>access_denied</code>") {
		t.Errorf("the refusal page:\n%s", refused.body)
	}

	// The custom-login client's callback, without a sign-in of this browser.
	demoErrorPage(t, newBrowser(t, s).get(s.URL+demo.CustomCallbackPath+"?code=x&state=y"), http.StatusBadRequest,
		"This sign-in is over", demo.CustomStartPath)
}

// demoPhoneRun is what testdata/interop/demo-phone.mjs reports.
type demoPhoneRun struct {
	SignedIn struct {
		URL, Title, RawToken, ExportLine, Copied, CopyLabel string
		Width                                               pageWidth
		CopyVisible                                         bool
	}
	Reloaded struct {
		Status            int
		Title, ExportLine string
		Width             pageWidth
	}
	WithoutDemoCSS pageWidth
	StaleCallback  struct {
		Status int
		Title  string
		Width  pageWidth
	}
	ConsoleErrors []string
}

type pageWidth struct{ Scroll, Client int }

// TestDemoPhone signs in to the demo client in Debian's headless Chromium
// (playwright-core) on a 390×844 viewport: the callback page is no wider
// than the phone, and neither is its reload or the error page; its copy
// button copies the export line. The control: the same page without the
// demo's stylesheet is wider than the phone (the token is one unbroken
// line), as it was before.
func TestDemoPhone(t *testing.T) {
	chromium := needChromium(t)
	s, seed := demoServer(t, storagetest.SQLite(t), "localhost")
	otp, err := login.TOTPCode(seed.totp.Secret, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	var r demoPhoneRun
	runNode(t, "demo-phone.mjs", &r, "START_URL="+s.URL+demo.LoginPath, "CALLBACK_URL="+s.URL+demo.CallbackPath,
		"USERNAME="+seed.username, "PASSWORD="+seed.password, "OTP="+otp, "CHROMIUM="+chromium)
	in := r.SignedIn
	if in.Title != "You are signed in" || strings.Count(in.RawToken, ".") != 2 || len(in.RawToken) < 390/8 || strings.ContainsAny(in.RawToken, " \n") {
		t.Fatalf("the callback page: %+v", in)
	}
	if in.Width.Client != 390 || in.Width.Scroll > 390 {
		t.Errorf("the callback page is %d px wide on a %d px phone", in.Width.Scroll, in.Width.Client)
	}
	if in.ExportLine != "export ACCESS_TOKEN='"+in.RawToken+"'" || !in.CopyVisible || in.Copied != in.ExportLine || in.CopyLabel != "Copied" {
		t.Errorf("the export line and its copy button: %q, visible %v, copied %q (%s)", in.ExportLine, in.CopyVisible, in.Copied, in.CopyLabel)
	}
	if r.Reloaded.Status != http.StatusOK || r.Reloaded.Title != in.Title || r.Reloaded.ExportLine != in.ExportLine || r.Reloaded.Width.Scroll > 390 {
		t.Errorf("the reloaded callback page: %+v", r.Reloaded)
	}
	if r.WithoutDemoCSS.Scroll <= 390 {
		t.Errorf("the control: without the demo's stylesheet the page is %d px wide, want wider than the phone", r.WithoutDemoCSS.Scroll)
	}
	if st := r.StaleCallback; st.Status != http.StatusBadRequest || st.Title != "This sign-in is over" || st.Width.Scroll > 390 {
		t.Errorf("the callback in another browser: %+v", st)
	}
	if len(r.ConsoleErrors) > 0 {
		t.Errorf("console errors (CSP?): %v", r.ConsoleErrors)
	}
}
