package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stile-id/stile/storage/storagetest"
)

// forbidden are texts of the library, Go and the database drivers that no
// error page or error_description may show.
var forbidden = []string{"unable to", "ErrorType", "Parent=", "http: ", "sql:", "pq:", "failed to", "If you have any questions"}

func noLibraryText(t *testing.T, what, body string) {
	t.Helper()
	for _, f := range forbidden {
		if strings.Contains(body, f) {
			t.Errorf("%s: shows %q:\n%s", what, f, body)
		}
	}
}

// TestErrorPages: every HTML error page a browser can reach is in stile's
// words, with the right status, a heading, advice and a way back; every
// error of the token, introspection and revocation endpoints is RFC 6749
// JSON in stile's words. Positive controls: a good authorization request
// reaches the login page, a good introspection is 200 JSON.
func TestErrorPages(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL(t))
			t.Run("HTML", func(t *testing.T) { testHTMLErrors(t, f) })
			t.Run("JSON", func(t *testing.T) { testJSONErrors(t, f) })
		})
	}
}

func testHTMLErrors(t *testing.T, f *fixture) {
	good, _ := url.Parse(f.rp.authorize().url)
	authz := func(k, v string) string {
		q := good.Query()
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return f.s.URL + "/authorize?" + q.Encode()
	}
	for _, c := range []struct {
		name, method, url string
		status            int
		heading, advice   string
	}{
		{"unknown client", "GET", authz("client_id", "nope"), 400, "Unknown application", "start the sign-in again"},
		{"no client", "GET", authz("client_id", ""), 400, "Sign-in request not valid", "client_id is missing"},
		{"redirect_uri not registered", "GET", authz("redirect_uri", "https://evil.example.com/cb"), 400, "Return address not registered", "redirect_uri"},
		{"no redirect_uri", "GET", authz("redirect_uri", ""), 400, "Sign-in request not valid", "redirect_uri is missing"},
		{"empty request", "GET", f.s.URL + "/authorize", 400, "Sign-in request not valid", "start the sign-in again"},
		{"wrong method", "PUT", f.s.URL + "/authorize", 405, "Not available", "start again"},
		{"expired request", "GET", f.s.URL + "/login?authRequestID=nope", 410, "Sign-in stopped", "sign in again"},
		{"callback of another browser", "GET", f.s.URL + "/authorize/callback?id=nope", 403, "Sign-in started elsewhere", "sign in again"},
		{"bad id_token_hint", "GET", f.s.URL + "/end_session?id_token_hint=abc", 400, "Sign-out request not valid", "id_token_hint"},
		{"bad post_logout_redirect_uri", "GET", f.s.URL + "/end_session?client_id=app&post_logout_redirect_uri=https://evil.example.com", 400,
			"Sign-out request not valid", "post_logout_redirect_uri"},
		{"unknown client at sign-out", "GET", f.s.URL + "/end_session?client_id=nope", 400, "Sign-out request not valid", "not registered"},
		{"404", "GET", f.s.URL + "/nope", 404, "Page not found", "Check the address"},
		{"405 at sign-out", "PUT", f.s.URL + "/end_session", 405, "Not available", "start again"},
	} {
		a := send(t, c.method, c.url, "", "")
		htmlPage(t, c.name, a, c.status)
		if !strings.Contains(a.body, "<h1>"+c.heading+"</h1>") || !strings.Contains(a.body, c.advice) || !strings.Contains(a.body, `href="/account"`) {
			t.Errorf("%s: want heading %q, advice %q and a way back:\n%s", c.name, c.heading, c.advice, a.body)
		}
		noLibraryText(t, c.name, a.body)
	}
	// Redirectable errors still go back to the application, in stile's words.
	a := send(t, "GET", authz("response_type", ""), "", "")
	loc, _ := url.Parse(a.header.Get("Location"))
	if a.status != http.StatusFound || loc == nil || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("iss") != f.s.URL {
		t.Fatalf("no response_type: %d %q, want a redirect with invalid_request", a.status, a.header.Get("Location"))
	}
	noLibraryText(t, "redirected error", loc.Query().Get("error_description"))
	f.passwordPage(t, newBrowser(t, f.s), f.rp.authorize()) // positive control
}

func testJSONErrors(t *testing.T, f *fixture) {
	form := "application/x-www-form-urlencoded"
	good := []string{"Authorization", "Basic " + basic("app", f.secret)}
	wrong := []string{"Authorization", "Basic " + basic("app", "wrong")}
	unknown := []string{"Authorization", "Basic " + basic("nope", "wrong")}
	for _, c := range []struct {
		name, method, path, body string
		header                   []string
		status                   int
		code                     string
		basicChallenge           bool
	}{
		{"token wrong secret", "POST", "/oauth/token", "grant_type=refresh_token&refresh_token=x", wrong, 401, "invalid_client", true},
		{"token unknown client", "POST", "/oauth/token", "grant_type=refresh_token&refresh_token=x", unknown, 401, "invalid_client", true},
		{"token secret in body", "POST", "/oauth/token", "grant_type=refresh_token&refresh_token=x&client_id=app&client_secret=x", nil, 401, "invalid_client", false},
		{"token missing refresh_token", "POST", "/oauth/token", "grant_type=refresh_token", good, 400, "invalid_request", false},
		{"token bad code", "POST", "/oauth/token", "grant_type=authorization_code&code=x&redirect_uri=" + appRedirect, good, 400, "invalid_grant", false},
		{"token no grant", "POST", "/oauth/token", "", good, 400, "invalid_request", false},
		{"token unsupported grant", "POST", "/oauth/token", "grant_type=foo", good, 400, "unsupported_grant_type", false},
		{"token wrong method", "GET", "/oauth/token", "", nil, 405, "invalid_request", false},
		{"introspect wrong secret", "POST", "/oauth/introspect", "token=x", wrong, 401, "invalid_client", true},
		{"introspect unknown client", "POST", "/oauth/introspect", "token=x", unknown, 401, "invalid_client", true},
		{"introspect no client", "POST", "/oauth/introspect", "token=x", nil, 401, "invalid_client", false},
		{"introspect wrong method", "GET", "/oauth/introspect", "", nil, 405, "invalid_request", false},
		{"revoke wrong secret", "POST", "/revoke", "token=x", wrong, 401, "invalid_client", true},
		{"revoke unknown client", "POST", "/revoke", "token=x", unknown, 401, "invalid_client", true},
		{"revoke no client", "POST", "/revoke", "token=x", nil, 401, "invalid_client", false},
		{"revoke wrong method", "GET", "/revoke", "", nil, 405, "invalid_request", false},
	} {
		a := send(t, c.method, f.s.URL+c.path, form, c.body, c.header...)
		jsonError(t, c.name, a, c.status, c.code)
		var body map[string]string
		json.Unmarshal([]byte(a.body), &body)
		if body["error_description"] == "" || len(body) != 2 || a.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %q Cache-Control %q, want error and error_description only, no-store", c.name, a.body, a.header.Get("Cache-Control"))
		}
		if got := a.header.Get("WWW-Authenticate"); (got != "") != c.basicChallenge || (c.basicChallenge && !strings.HasPrefix(got, "Basic")) {
			t.Errorf("%s: WWW-Authenticate %q", c.name, got)
		}
		noLibraryText(t, c.name, a.body)
	}
	// Positive controls: a good introspection and a good revocation answer 200.
	a := send(t, "POST", f.s.URL+"/oauth/introspect", form, "token=x", good...)
	if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") || !strings.Contains(a.body, `"active":false`) {
		t.Fatalf("good introspection: %d %s", a.status, a.body)
	}
	if a := send(t, "POST", f.s.URL+"/revoke", form, "token=x", good...); a.status != http.StatusOK {
		t.Fatalf("good revocation: %d %s", a.status, a.body)
	}
}
