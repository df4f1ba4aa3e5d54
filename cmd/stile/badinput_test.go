package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stile-id/stile/login"
)

// TestBadInput sends what no honest client sends — bodies that are not
// labelled JSON, wrong methods, bytes that are not UTF-8, NUL characters —
// to every door, on SQLite and PostgreSQL (where invalid UTF-8 used to be a
// 500), each beside the well-formed request that works.
func TestBadInput(t *testing.T) {
	runHeadless(t, []hscenario{
		{"MediaType", testBadMediaType},
		{"WrongMethod", testWrongMethod},
		{"UTF8Forms", testUTF8Forms},
		{"UTF8APIs", testUTF8APIs},
		{"UTF8OAuth", testUTF8OAuth},
		{"UnofferedGrants", testUnofferedGrants},
	})
}

// rawAnswer is a response read in full.
type rawAnswer struct {
	status int
	header http.Header
	body   string
}

// send makes one request with a raw body ("" for none) of content type ct
// ("" for no Content-Type) and headers as name, value pairs.
func send(t *testing.T, method, rawURL, ct, body string, header ...string) rawAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req) // no redirects followed
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// jsonError checks a JSON answer's status, content type and error code
// (the field is "error" in both the login APIs' and RFC 6749's bodies).
func jsonError(t *testing.T, what string, a rawAnswer, status int, code string) {
	t.Helper()
	var body map[string]any
	err := json.Unmarshal([]byte(a.body), &body)
	if a.status != status || err != nil || body["error"] != code || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s: %d %s %q, want %d JSON with error %s", what, a.status, a.header.Get("Content-Type"), a.body, status, code)
	}
}

// htmlPage checks an answer is an HTML page with this status.
func htmlPage(t *testing.T, what string, a rawAnswer, status int) {
	t.Helper()
	if a.status != status || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || !strings.Contains(a.body, "<html") ||
		a.header.Get("Content-Security-Policy") == "" {
		t.Fatalf("%s: %d %s, want a %d HTML page with a CSP:\n%s", what, a.status, a.header.Get("Content-Type"), status, a.body)
	}
}

// testBadMediaType: every JSON endpoint refuses a body not labelled
// application/json — text/plain, a form or multipart are what a page can
// send cross-origin without a preflight — with 415; the same body labelled
// application/json (with a charset) gets past that check.
func testBadMediaType(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	token := h.mfaToken(t, b, h.alice, h.totpCode(t, h.alice)).AccessToken
	arID, _ := h.handoff(t, newBrowser(t, h.s))
	bearer := []string{"Authorization", "Bearer " + token}
	for _, c := range []struct {
		method, path, body string
		header             []string
	}{
		{http.MethodPost, "/login/api/authenticate", `{"authRequestID":"` + arID + `","loginToken":"` + h.loginToken(arID) + `","username":"alice","password":"` + h.alice.password + `"}`, nil},
		{http.MethodPost, "/login/api/verify", `{"transactionID":"x","otp":"123456"}`, nil},
		{http.MethodPost, "/login/api/resend", `{"transactionID":"x"}`, nil},
		{http.MethodPost, "/headless/authenticate", `{"username":"alice","password":"p","apiKey":"stile_x_y"}`, nil},
		{http.MethodPost, "/headless/login", `{"username":"alice","transactionID":"x","authType":"TOTP","otp":"1","apiKey":"stile_x_y"}`, nil},
		{http.MethodPost, mfaAPI + "/totp/confirm", `{"otp":"123456"}`, bearer},
		{http.MethodDelete, mfaAPI + "/totp", `{"otp":"123456"}`, bearer},
		{http.MethodPut, mfaAPI + "/preferred", `{"method":"TOTP"}`, bearer},
	} {
		for _, ct := range []string{"text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
			"multipart/form-data; boundary=x", "application/jsonx", ""} {
			a := send(t, c.method, h.s.URL+c.path, ct, c.body, c.header...)
			jsonError(t, c.method+" "+c.path+" as "+ct, a, http.StatusUnsupportedMediaType, string(login.CodeUnsupportedMedia))
		}
		// Positive control: labelled JSON, the body is read (whatever the step then says).
		a := send(t, c.method, h.s.URL+c.path, "application/json; charset=utf-8", c.body, c.header...)
		if a.status == http.StatusUnsupportedMediaType || a.status >= 500 || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s %s as application/json: %d %s", c.method, c.path, a.status, a.body)
		}
		if c.path == "/login/api/authenticate" && a.status != http.StatusOK {
			t.Fatalf("authenticate as application/json: %d %s", a.status, a.body)
		}
	}
}

// testWrongMethod: a route that exists answers another method with 405 and
// the methods it takes in Allow, in its area's shape — not the provider's
// 404 — while an unknown path stays a 404.
func testWrongMethod(t *testing.T, h *hfixture) {
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodGet, "/login/api/authenticate", "POST, OPTIONS"},
		{http.MethodGet, "/login/api/verify", "POST, OPTIONS"},
		{http.MethodPut, "/login/api/resend", "POST, OPTIONS"},
		{http.MethodGet, "/headless/authenticate", "POST"},
		{http.MethodGet, "/headless/login", "POST"},
		{http.MethodPost, mfaAPI, "GET, OPTIONS"},
		{http.MethodGet, mfaAPI + "/totp", "POST, OPTIONS, DELETE"},
		{http.MethodGet, mfaAPI + "/totp/confirm", "POST, OPTIONS"},
		{http.MethodGet, mfaAPI + "/recovery-codes", "POST, OPTIONS"},
		{http.MethodGet, mfaAPI + "/preferred", "PUT, OPTIONS"},
	} {
		a := send(t, c.method, h.s.URL+c.path, "", "")
		jsonError(t, c.method+" "+c.path, a, http.StatusMethodNotAllowed, string(login.CodeMethodNotAllowed))
		if got := a.header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodGet, "/login/otp/resend", "POST"},
		{http.MethodPut, "/login", "GET, HEAD, POST"},
		{http.MethodDelete, "/login/otp", "GET, HEAD, POST"},
		{http.MethodPost, "/login/session", "GET"},
		{http.MethodGet, "/account/signout", "POST"},
		{http.MethodGet, "/account/consents/withdraw", "POST"},
		{http.MethodPut, login.EnrollPath, "GET, HEAD, POST"},
		{http.MethodGet, login.EnrollPath + "/confirm", "POST"},
	} {
		a := send(t, c.method, h.s.URL+c.path, "", "")
		htmlPage(t, c.method+" "+c.path, a, http.StatusMethodNotAllowed)
		if got := a.header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
	// Positive controls: the right method is served, an unknown path is a 404.
	jsonError(t, "POST /headless/login", send(t, http.MethodPost, h.s.URL+"/headless/login", "application/json", `{}`),
		http.StatusNotFound, string(login.CodeNotEnabled))
	if a := send(t, http.MethodGet, h.s.URL+"/login/api/nope", "", ""); a.status != http.StatusNotFound {
		t.Fatalf("GET /login/api/nope: %d", a.status)
	}
	if a := send(t, http.MethodGet, h.s.URL+"/login", "", ""); a.status == http.StatusMethodNotAllowed {
		t.Fatalf("GET /login: %d", a.status)
	}
}

// multipartBody encodes fields as multipart/form-data.
func multipartBody(fields map[string]string) (ct, body string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	w.Close()
	return w.FormDataContentType(), buf.String()
}

// testUTF8Forms: the password form with a username that is not UTF-8, or
// holds a NUL, url-encoded or multipart, is a 400 page on both databases;
// the same form with a well-formed unknown name is the usual 401.
func testUTF8Forms(t *testing.T, h *hfixture) {
	b := newBrowser(t, h.s)
	action, form := h.passwordPage(t, b, h.rp.authorize()).form(t)
	target := h.s.URL + action.String()
	form.Set("password", "whatever")
	for _, bad := range []string{"al\xffice", "\xc3\x28", "al\x00ice", "\xed\xa0\x80"} {
		form.Set("username", bad)
		htmlPage(t, "username "+url.QueryEscape(bad), b.raw(http.MethodPost, target, "application/x-www-form-urlencoded", form.Encode()), http.StatusBadRequest)
		fields := map[string]string{"username": bad, "password": "whatever", "authRequestID": form.Get("authRequestID")}
		ct, body := multipartBody(fields)
		htmlPage(t, "multipart username "+url.QueryEscape(bad), b.raw(http.MethodPost, target, ct, body), http.StatusBadRequest)
	}
	form.Set("username", "alicé")
	htmlPage(t, "a well-formed unknown username", b.raw(http.MethodPost, target, "application/x-www-form-urlencoded", form.Encode()), http.StatusUnauthorized)
	// The code form's field and a query value are checked the same way.
	htmlPage(t, "otp", b.raw(http.MethodPost, h.s.URL+"/login/otp", "application/x-www-form-urlencoded", "transactionID=x&otp=%FF"), http.StatusBadRequest)
	htmlPage(t, "query", b.raw(http.MethodGet, h.s.URL+"/login?authRequestID=%FF", "", ""), http.StatusBadRequest)
	htmlPage(t, "path", b.raw(http.MethodGet, h.s.URL+"/login/%FF", "", ""), http.StatusBadRequest)
	if a := b.raw(http.MethodGet, h.s.URL+"/login?authRequestID=x", "", ""); a.status == http.StatusBadRequest && strings.Contains(a.body, "UTF-8") {
		t.Fatalf("a well-formed query was refused as not UTF-8")
	}
	// /authorize: a login_hint or client_id that is not text gets a page,
	// before the library stores or looks anything up; a valid one redirects.
	az := h.rp.authorize()
	for _, param := range []string{"login_hint", "state", "nonce", "client_id"} {
		u, _ := url.Parse(az.url)
		q := u.Query()
		q.Set(param, "x\xff\x00")
		u.RawQuery = q.Encode()
		htmlPage(t, "/authorize with "+param, b.raw(http.MethodGet, u.String(), "", ""), http.StatusBadRequest)
	}
	u, _ := url.Parse(az.url)
	q := u.Query()
	q.Set("login_hint", "alicé")
	u.RawQuery = q.Encode()
	if a := b.raw(http.MethodGet, u.String(), "", ""); a.status != http.StatusFound && a.status != http.StatusSeeOther {
		t.Fatalf("/authorize with a well-formed login_hint: %d %s", a.status, a.body)
	}
}

// raw sends one request with the browser's cookies, following nothing.
func (b *browser) raw(method, rawURL, ct, body string) rawAnswer {
	b.t.Helper()
	req, err := http.NewRequest(method, rawURL, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	b.b.NoFollow = true
	p := b.wrap(b.b.Do(req))
	return rawAnswer{status: p.status, header: p.header, body: p.body}
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// testUTF8APIs: a NUL in a JSON string (invalid bytes the JSON decoder
// already replaces) is a 400 in the API's shape on the login API, the
// direct mode and self-service; the same call without it gets its usual
// answer.
func testUTF8APIs(t *testing.T, h *hfixture) {
	arID, _ := h.handoff(t, newBrowser(t, h.s))
	c := h.dmAdd(t, "cms")
	for _, call := range []struct{ path, bad, good string }{
		{"/login/api/authenticate", `{"authRequestID":"` + arID + `","username":"al\u0000ice","password":"x"}`,
			`{"authRequestID":"` + arID + `","username":"al` + "\xff" + `ice","password":"x"}`},
		{"/login/api/verify", `{"transactionID":"\u0000","otp":"1"}`, `{"transactionID":"` + "\xff" + `","otp":"1"}`},
		{"/headless/authenticate", `{"username":"\u0000","password":"x","apiKey":"` + c.apiKey + `"}`,
			`{"username":"` + "\xff" + `","password":"x","apiKey":"` + c.apiKey + `"}`},
		{"/headless/login", `{"username":"a","transactionID":"\u0000","authType":"TOTP","otp":"1","apiKey":"` + c.apiKey + `"}`,
			`{"username":"a","transactionID":"` + "\xff" + `","authType":"TOTP","otp":"1","apiKey":"` + c.apiKey + `"}`},
	} {
		jsonError(t, call.path+" with a NUL", send(t, http.MethodPost, h.s.URL+call.path, "application/json", call.bad, "Origin", customOrigin),
			http.StatusBadRequest, string(login.CodeInvalidRequest))
		a := send(t, http.MethodPost, h.s.URL+call.path, "application/json", call.good)
		if a.status >= 500 || a.status == http.StatusBadRequest && strings.Contains(a.body, "UTF-8") {
			t.Fatalf("%s with invalid bytes JSON replaces: %d %s", call.path, a.status, a.body)
		}
	}
	jsonError(t, "self-service with a NUL", send(t, http.MethodPut, h.s.URL+mfaAPI+"/preferred", "application/json", `{"method":"\u0000"}`),
		http.StatusBadRequest, string(login.CodeInvalidRequest))
	jsonError(t, "self-service path", send(t, http.MethodGet, h.s.URL+mfaAPI+"/%FF", "", ""), http.StatusBadRequest, string(login.CodeInvalidRequest))
}

// testUTF8OAuth: the token, introspection and revocation endpoints refuse
// a client_id, secret or parameter that is not text with an RFC 6749
// invalid_request, never a 500; a well-formed unknown client is the usual
// invalid_client.
func testUTF8OAuth(t *testing.T, h *hfixture) {
	form := "application/x-www-form-urlencoded"
	for _, path := range []string{"/oauth/token", "/oauth/introspect", "/revoke"} {
		for _, body := range []string{"grant_type=authorization_code&code=x&client_id=%FF&client_secret=s",
			"grant_type=refresh_token&refresh_token=%00&client_id=app&client_secret=s", "token=%FF%FE&client_id=app&client_secret=s",
			"grant_type=authorization_code&code=x&code_verifier=%C3%28&redirect_uri=%FF&client_id=app&client_secret=s"} {
			jsonError(t, path+" "+body, send(t, http.MethodPost, h.s.URL+path, form, body), http.StatusBadRequest, "invalid_request")
		}
		for _, user := range []string{"%FF", "\xff", "a%00"} {
			a := send(t, http.MethodPost, h.s.URL+path, form, "grant_type=authorization_code&code=x&token=x", "Authorization",
				"Basic "+basic(user, "secret"))
			jsonError(t, path+" Basic "+user, a, http.StatusBadRequest, "invalid_request")
		}
		// Positive control: a well-formed unknown client is refused as such.
		a := send(t, http.MethodPost, h.s.URL+path, form, "grant_type=authorization_code&code=x&token=x&client_id=nobody%C3%A9&client_secret=s")
		if a.status >= 500 || a.status == http.StatusBadRequest && strings.Contains(a.body, "UTF-8") {
			t.Fatalf("%s, well-formed unknown client: %d %s", path, a.status, a.body)
		}
		a = send(t, http.MethodPost, h.s.URL+path, form, "grant_type=authorization_code&code=x&token=x", "Authorization", "Basic "+basic("nobodyé", "s"))
		if a.status >= 500 || a.status == http.StatusBadRequest && strings.Contains(a.body, "UTF-8") {
			t.Fatalf("%s, well-formed unknown Basic client: %d %s", path, a.status, a.body)
		}
	}
}

// testUnofferedGrants: the library runs the JWT-bearer grant whatever
// discovery says, and a malformed assertion was a 500 with the parser's
// error (FuzzToken's first crasher); every grant stile does not offer is
// now unsupported_grant_type, in the body or the query, and a body that is
// not a form is invalid_request, and a client assertion invalid_client.
// Positive control: a refresh grant with a
// wrong token is the library's invalid_grant.
func testUnofferedGrants(t *testing.T, h *hfixture) {
	form := "application/x-www-form-urlencoded"
	auth := []string{"Authorization", "Basic " + basic("app", h.secret)}
	for _, body := range []string{"grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=..",
		"grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=a.b.c", "grant_type=password&username=alice&password=x",
		"grant_type=urn:ietf:params:oauth:grant-type:token-exchange", "grant_type=implicit"} {
		jsonError(t, body, send(t, http.MethodPost, h.s.URL+"/oauth/token", form, body, auth...), http.StatusBadRequest, "unsupported_grant_type")
		jsonError(t, body+" without a client", send(t, http.MethodPost, h.s.URL+"/oauth/token", form, body), http.StatusBadRequest, "unsupported_grant_type")
	}
	jsonError(t, "grant in the query", send(t, http.MethodPost, h.s.URL+"/oauth/token?grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=..",
		form, "", auth...), http.StatusBadRequest, "unsupported_grant_type")
	jsonError(t, "malformed form", send(t, http.MethodPost, h.s.URL+"/oauth/token", form, "grant_type=refresh_token&x=%zz", auth...),
		http.StatusBadRequest, "invalid_request")
	// Client assertions (private_key_jwt) are not offered: a refresh grant
	// carrying one was a 500, introspection a text/plain 401.
	ca := "&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=.."
	for path, body := range map[string]string{"/oauth/token": "grant_type=refresh_token&refresh_token=x&client_id=app",
		"/oauth/introspect": "token=x", "/revoke": "token=x&client_id=app"} {
		jsonError(t, path+" with a client assertion", send(t, http.MethodPost, h.s.URL+path, form, body+ca), http.StatusUnauthorized, "invalid_client")
	}
	jsonError(t, "a wrong refresh token", send(t, http.MethodPost, h.s.URL+"/oauth/token", form, "grant_type=refresh_token&refresh_token=x", auth...),
		http.StatusBadRequest, "invalid_grant")
}
