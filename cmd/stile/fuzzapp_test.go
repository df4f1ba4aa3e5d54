package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/internal/clocktest"
	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// The fuzz targets drive a real stile in-process — newApp over a SQLite
// file, through its whole handler — with a cheap Argon2id (fuzzing is about
// input, not hashing cost) and limits too high to stop the fuzzer before it
// reaches deeper code. An input names live objects through placeholders
// ({{ar}}, {{tx}}, {{pw}}, …) so the fuzzer can reach the success paths,
// not only the refusals.

const fuzzIssuer = "http://stile.test"

// cheapArgon is the smallest Argon2id stile accepts to verify.
var cheapArgon = login.Argon2id{Memory: 8 * 1024, Time: 1, Threads: 1}

type fuzzApp struct {
	h     http.Handler
	jar   http.CookieJar    // the browser of the {{ar}} / {{tx}} page login
	vars  map[string]string // placeholder → value
	clock *clocktest.Clock
}

func newFuzzApp(f *testing.F) *fuzzApp {
	ctx := context.Background()
	clock := clocktest.New(time.Now())
	db := storagetest.Open(f, storagetest.SQLite(f), storage.WithClock(clock.Now))
	raw := make([]byte, 32)
	rand.Read(raw)
	master, _ := keys.NewMaster(raw)
	if err := master.Check(ctx, db); err != nil {
		f.Fatal(err)
	}
	high := storage.Rate{Limit: 1 << 30, Per: time.Minute}
	a, err := newApp(ctx, appConfig{Issuer: fuzzIssuer, DB: db, Master: master, Now: clock.Now,
		Log: slog.New(slog.DiscardHandler), Hasher: cheapArgon,
		LoginLimits: &login.Limits{PasswordPerAddress: high, OTPPerAddress: high, ResendPerAddress: high, SendsPerMinute: high, SendsPerHour: high},
		OPLimits:    &op.Limits{AuthorizePerAddress: high, TokenPerAddress: high}})
	if err != nil {
		f.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	z := &fuzzApp{h: a.handler, jar: jar, clock: clock, vars: map[string]string{"{{pw}}": "correct horse fuzz"}}
	z.seed(f, ctx, db, master)
	return z
}

// seed makes a user with TOTP, a client on stile's pages ("web"), one with
// a login page of its own ("custom") and a direct-mode one ("cms"), then
// logins in flight on each door, a code and a refresh token.
func (z *fuzzApp) seed(f *testing.F, ctx context.Context, db *storage.DB, master *keys.Master) {
	hash, _ := cheapArgon.Hash(z.vars["{{pw}}"])
	u := &storage.User{Username: "fuzz", Email: "fuzz@example.com", PasswordHash: hash}
	if err := db.CreateUser(ctx, u); err != nil {
		f.Fatal(err)
	}
	e, err := account.EnrollTOTP(ctx, db, keys.NewSealer(master), "stile", u)
	if err != nil {
		f.Fatal(err)
	}
	z.vars["{{totp}}"] = e.Secret
	secret := op.NewClientSecret()
	digest := op.SecretDigest(op.SecretKey(master), secret)
	key, keyID, keyMAC := login.NewAPIKey(codeKeys(master).APIKey)
	grants := storage.Strings{storage.GrantAuthorizationCode, storage.GrantRefreshToken}
	for _, c := range []*storage.Client{
		{ID: "web", Name: "Web", Type: storage.ClientWeb, FirstParty: true, RedirectURIs: storage.Strings{"https://app.test/cb"},
			RequirePKCE: true, GrantTypes: grants, SecretHash: digest, AuthMethod: storage.AuthSecretBasic},
		{ID: "custom", Name: "Custom", Type: storage.ClientWeb, FirstParty: true, RedirectURIs: storage.Strings{"https://app.test/cb"},
			RequirePKCE: true, GrantTypes: grants, SecretHash: digest, AuthMethod: storage.AuthSecretPost,
			LoginURL: "https://login.test/", WebOrigins: storage.Strings{"https://login.test"}},
		{ID: "cms", Name: "CMS", Type: storage.ClientWeb, FirstParty: true, RedirectURIs: storage.Strings{"https://cms.test/cb"},
			GrantTypes: grants, SecretHash: digest, AuthMethod: storage.AuthSecretBasic, Headless: true,
			APIKeyID: storage.NullString{String: keyID, Valid: true}, APIKeyMAC: keyMAC},
	} {
		if err := db.CreateClient(ctx, c); err != nil {
			f.Fatal(err)
		}
	}
	z.vars["{{secret}}"], z.vars["{{key}}"] = secret, key

	// A code, redeemed for {{refresh}}, and another left for {{code}}.
	code, verifier := z.signIn(f)
	a := z.do(httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(url.Values{"grant_type": {"authorization_code"},
		"code": {code}, "redirect_uri": {"https://app.test/cb"}, "code_verifier": {verifier}, "client_id": {"web"}, "client_secret": {secret}}.Encode())),
		"application/x-www-form-urlencoded")
	var tok map[string]any
	json.Unmarshal([]byte(a.body), &tok)
	z.vars["{{refresh}}"], _ = tok["refresh_token"].(string)
	if z.vars["{{refresh}}"] == "" {
		f.Fatalf("seed: code exchange %d %s", a.status, a.body)
	}
	z.clock.Advance(31 * time.Second) // the next TOTP step
	z.vars["{{code}}"], z.vars["{{verifier}}"] = z.signIn(f)

	// Logins in flight: the pages' ({{ar}}, {{tx}}, in z.jar), the JSON
	// API's ({{apiar}} with its {{logintoken}}, {{apitx}}) and the direct mode's ({{dtx}}).
	z.vars["{{ar}}"], z.vars["{{tx}}"] = z.pagesPassword(f, "web", z.jar)
	z.vars["{{apiar}}"] = z.handoff(f, "custom", nil)
	a = z.post("/login/api/authenticate", "application/json", `{"authRequestID":"`+z.vars["{{apiar}}"]+`","loginToken":"`+z.vars["{{logintoken}}"]+
		`","username":"fuzz","password":"`+z.vars["{{pw}}"]+`"}`)
	z.vars["{{apitx}}"] = jsonField(a.body, "transactionID")
	a = z.post("/headless/authenticate", "application/json", `{"username":"fuzz","password":"`+z.vars["{{pw}}"]+`","apiKey":"`+key+`"}`)
	z.vars["{{dtx}}"] = jsonField(a.body, "transactionID")
	if z.vars["{{apitx}}"] == "" || z.vars["{{dtx}}"] == "" {
		f.Fatalf("seed: logins in flight %v", z.vars)
	}
}

func jsonField(body, k string) string {
	var m map[string]any
	json.Unmarshal([]byte(body), &m)
	s, _ := m[k].(string)
	return s
}

// handoff starts an authorization for client and opens stile's /login in
// the browser jar (nil: a fresh one); it returns the request's ID.
func (z *fuzzApp) handoff(f *testing.F, client string, jar http.CookieJar) string {
	if jar == nil {
		jar, _ = cookiejar.New(nil)
	}
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	z.vars["{{handoff-verifier}}"] = verifier
	q := url.Values{"client_id": {client}, "response_type": {"code"}, "scope": {"openid offline_access"},
		"redirect_uri": {"https://app.test/cb"}, "state": {"s"}, "nonce": {"n"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	loc := z.browse(jar, http.MethodGet, "/authorize?"+q.Encode(), "", "").location()
	id := loc.Query().Get("authRequestID")
	if loc.Path != "/login" || id == "" {
		f.Fatalf("seed: /authorize sent %s", loc)
	}
	a := z.browse(jar, http.MethodGet, loc.RequestURI(), "", "")
	if a.status != http.StatusOK && a.status != http.StatusSeeOther {
		f.Fatalf("seed: /login %d %s", a.status, a.body)
	}
	if t := a.location().Query().Get("loginToken"); t != "" { // a client with its own login page
		z.vars["{{logintoken}}"] = t
	}
	return id
}

// pagesPassword passes the password step on stile's pages in jar.
func (z *fuzzApp) pagesPassword(f *testing.F, client string, jar http.CookieJar) (ar, tx string) {
	ar = z.handoff(f, client, jar)
	a := z.browse(jar, http.MethodPost, "/login", "application/x-www-form-urlencoded",
		url.Values{"authRequestID": {ar}, "username": {"fuzz"}, "password": {z.vars["{{pw}}"]}}.Encode())
	tx = a.location().Query().Get("transactionID")
	if tx == "" {
		f.Fatalf("seed: password step %d %s", a.status, a.body)
	}
	return ar, tx
}

// signIn runs a whole login on stile's pages and returns the code and its
// PKCE verifier, in a browser of its own.
func (z *fuzzApp) signIn(f *testing.F) (code, verifier string) {
	jar, _ := cookiejar.New(nil)
	_, tx := z.pagesPassword(f, "web", jar)
	verifier = z.vars["{{handoff-verifier}}"]
	otp, _ := login.TOTPCode(z.vars["{{totp}}"], z.clock.Now())
	loc := z.browse(jar, http.MethodPost, "/login/otp", "application/x-www-form-urlencoded",
		url.Values{"transactionID": {tx}, "otp": {otp}}.Encode()).location()
	for range 3 { // the callback, then the client
		if loc.Host == "app.test" {
			break
		}
		loc = z.browse(jar, http.MethodGet, loc.RequestURI(), "", "").location()
	}
	if code = loc.Query().Get("code"); code == "" {
		f.Fatalf("seed: sign-in ended at %s", loc)
	}
	return code, verifier
}

func (a answer) location() *url.URL {
	u, _ := url.Parse(a.header.Get("Location"))
	if u == nil {
		u = &url.URL{}
	}
	return u
}

// do serves req with content type ct ("" for none).
func (z *fuzzApp) do(req *http.Request, ct string) answer {
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	rec := httptest.NewRecorder()
	z.h.ServeHTTP(rec, req)
	return answer{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

func (z *fuzzApp) post(path, ct, body string) answer {
	return z.do(httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)), ct)
}

// browse sends a request with jar's cookies and keeps the ones it sets.
func (z *fuzzApp) browse(jar http.CookieJar, method, target, ct, body string) answer {
	req := httptest.NewRequest(method, fuzzIssuer+target, strings.NewReader(body))
	for _, c := range jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	a := z.do(req, ct)
	jar.SetCookies(req.URL, (&http.Response{Header: a.header}).Cookies())
	return a
}

// expand replaces the placeholders in s with their values.
func (z *fuzzApp) expand(s string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	for k, v := range z.vars {
		s = strings.ReplaceAll(s, k, v)
	}
	if strings.Contains(s, "{{otp}}") { // the code the user's app shows now
		otp, _ := login.TOTPCode(z.vars["{{totp}}"], z.clock.Now())
		s = strings.ReplaceAll(s, "{{otp}}", otp)
	}
	return s
}

// leaks are what no answer may carry unless the request did: the user's
// password and TOTP secret, the client secret, the apiKey and a password
// hash.
func (z *fuzzApp) leaks() []string {
	return []string{z.vars["{{pw}}"], z.vars["{{totp}}"], z.vars["{{secret}}"], z.vars["{{key}}"], "$argon2id$"}
}

// internalText is error detail no refusal may carry. Only refusals are
// searched: a successful answer's random tokens can spell "SQL" or "panic"
// in base64.
var internalText = []string{"pq:", "sqlite", "SQL", "panic", "goroutine", "runtime error", "nil pointer"}

// check holds every answer to the invariants: no 5xx, the route's content
// type (wantType: "application/json" or "text/html") on every answer with a
// body that is not a redirect, and no leak.
func (z *fuzzApp) check(t *testing.T, what string, request []byte, a answer, wantType string) {
	t.Helper()
	if a.status >= 500 {
		t.Fatalf("%s: %d %s", what, a.status, a.body)
	}
	if a.body != "" && a.status/100 != 3 && !strings.HasPrefix(a.header.Get("Content-Type"), wantType) {
		t.Fatalf("%s: %d with Content-Type %q, want %s:\n%s", what, a.status, a.header.Get("Content-Type"), wantType, a.body)
	}
	for _, s := range z.leaks() {
		if s != "" && strings.Contains(a.body+a.header.Get("Location"), s) && !bytes.Contains(request, []byte(s)) {
			t.Fatalf("%s: the answer carries %q:\n%s", what, s, a.body)
		}
	}
	refusal := a.location().Query().Get("error_description")
	if a.status >= 400 {
		refusal += a.body
	}
	for _, s := range internalText {
		if strings.Contains(refusal, s) && !bytes.Contains(request, []byte(s)) {
			t.Fatalf("%s: the refusal carries %q:\n%s", what, s, refusal)
		}
	}
}
