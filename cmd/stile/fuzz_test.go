package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// Fuzz targets: `make fuzz` runs each for a bounded time; plain `go test`
// runs their seeds and every input under testdata/fuzz/<target>/, where
// each crasher found stays as a regression test. Every answer must be no
// 5xx, of the route's content type, and free of secrets the request did
// not carry (fuzzApp.check); a panic fails the target by itself.

// header sets a header the way a real server would let it through: one
// that net/http would refuse on the wire is left out.
func header(r *http.Request, name, value string) {
	if value != "" && httpguts.ValidHeaderFieldValue(value) {
		r.Header.Set(name, value)
	}
}

// FuzzLoginAPI posts bodies, content types and origins to the JSON login
// API's three steps.
func FuzzLoginAPI(f *testing.F) {
	steps := []string{"authenticate", "verify", "resend"}
	f.Add(uint8(0), `{"authRequestID":"{{apiar}}","loginToken":"{{logintoken}}","username":"fuzz","password":"{{pw}}"}`, "application/json", "https://login.test")
	f.Add(uint8(0), `{"authRequestID":"{{apiar}}","loginToken":"{{logintoken}}","username":"fuzz","password":"wrong"}`, "application/json", "")
	f.Add(uint8(1), `{"transactionID":"{{apitx}}","otp":"{{otp}}"}`, "application/json", "https://login.test")
	f.Add(uint8(1), `{"transactionID":"{{apitx}}","otp":"ABCD-EFGH"}`, "application/json", "https://evil.test")
	f.Add(uint8(2), `{"transactionID":"{{apitx}}"}`, "application/json; charset=utf-8", "")
	f.Add(uint8(0), `{"username":"a\u0000b"}`, "text/plain", "")
	f.Add(uint8(1), `{"transactionID":{"x":1},"otp":[1]}`, "application/json", "")
	f.Add(uint8(2), `[`, "application/json", "null")
	z := newFuzzApp(f)
	f.Fuzz(func(t *testing.T, step uint8, body, ct, origin string) {
		path := "/login/api/" + steps[int(step)%len(steps)]
		body = z.expand(body)
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		header(req, "Origin", origin)
		header(req, "Content-Type", ct)
		z.check(t, path, []byte(body+origin), z.do(req, ""), "application/json")
	})
}

// FuzzLoginForms posts the password, code and resend forms of stile's
// pages, url-encoded or multipart, with the browser's binding cookie.
func FuzzLoginForms(f *testing.F) {
	paths := []string{"/login", "/login/otp", "/login/otp/resend"}
	form := "application/x-www-form-urlencoded"
	f.Add(uint8(0), "authRequestID={{ar}}&username=fuzz&password={{pw}}", form)
	f.Add(uint8(0), "authRequestID={{ar}}&username=fuzz&password=wrong", form)
	f.Add(uint8(0), "authRequestID={{ar}}&username=%FF&password=%00", form)
	f.Add(uint8(1), "transactionID={{tx}}&otp={{otp}}", form)
	f.Add(uint8(1), "transactionID={{tx}}&otp=ABCD-EFGH", form)
	f.Add(uint8(2), "transactionID={{tx}}", form)
	f.Add(uint8(0), "--b\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nfuzz\r\n--b\r\nContent-Disposition: form-data; name=\"authRequestID\"\r\n\r\n{{ar}}\r\n--b--\r\n", "multipart/form-data; boundary=b")
	f.Add(uint8(1), "transactionID=;otp=%zz", form)
	z := newFuzzApp(f)
	f.Fuzz(func(t *testing.T, step uint8, body, ct string) {
		path := paths[int(step)%len(paths)]
		body = z.expand(body)
		req := httptest.NewRequest(http.MethodPost, fuzzIssuer+path, strings.NewReader(body))
		for _, c := range z.jar.Cookies(req.URL) {
			req.AddCookie(c)
		}
		header(req, "Content-Type", ct)
		z.check(t, path, []byte(body), z.do(req, ""), "text/html")
	})
}

// FuzzToken calls the token endpoint with every parameter fuzzed, client
// authentication by Basic or in the body, and raw extra form text.
func FuzzToken(f *testing.F) {
	f.Add("authorization_code", "{{code}}", "", "web", "{{secret}}", "{{verifier}}", "https://app.test/cb", true, "")
	f.Add("authorization_code", "{{code}}", "", "web", "{{secret}}", "wrong", "https://app.test/cb", false, "")
	f.Add("refresh_token", "", "{{refresh}}", "web", "{{secret}}", "", "", true, "scope=openid")
	f.Add("refresh_token", "", "{{refresh}}", "custom", "{{secret}}", "", "", false, "")
	f.Add("client_credentials", "", "", "cms", "{{secret}}", "", "", true, "scope=stile:admin")
	f.Add("password", "", "", "%FF", "\x00", "", "", true, "username=fuzz&password={{pw}}")
	f.Add("urn:ietf:params:oauth:grant-type:jwt-bearer", "", "", "", "", "", "", false, "assertion=a.b.c")
	f.Add("authorization_code", "x", "", "web", "", "", "", false, "client_id=custom&client_id=web")
	z := newFuzzApp(f)
	f.Fuzz(func(t *testing.T, grant, code, refresh, clientID, secret, verifier, redirect string, basic bool, raw string) {
		q := url.Values{"grant_type": {z.expand(grant)}}
		for k, v := range map[string]string{"code": code, "refresh_token": refresh, "code_verifier": verifier, "redirect_uri": redirect} {
			if v != "" {
				q.Set(k, z.expand(v))
			}
		}
		clientID, secret = z.expand(clientID), z.expand(secret)
		if !basic {
			q.Set("client_id", clientID)
			q.Set("client_secret", secret)
		}
		body := q.Encode()
		if raw != "" {
			body += "&" + z.expand(raw)
		}
		req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
		}
		z.check(t, "/oauth/token", []byte(body+clientID+secret), z.do(req, ""), "application/json")
	})
}

// FuzzDirect posts bodies, apiKeys, X-End-User-IP values and origins to
// the direct mode's two steps.
func FuzzDirect(f *testing.F) {
	steps := []string{"authenticate", "login"}
	f.Add(uint8(0), `{"username":"fuzz","password":"{{pw}}","apiKey":"{{key}}"}`, "203.0.113.7", "", "application/json")
	f.Add(uint8(0), `{"username":"fuzz","password":"wrong","apiKey":"{{key}}"}`, "2001:db8::1", "", "application/json")
	f.Add(uint8(0), `{"username":"fuzz","password":"{{pw}}","apiKey":"stile_00_x"}`, "", "", "application/json")
	f.Add(uint8(1), `{"username":"fuzz","transactionID":"{{dtx}}","authType":"TOTP","otp":"{{otp}}","apiKey":"{{key}}"}`, "198.51.100.1", "", "application/json")
	f.Add(uint8(1), `{"username":"FUZZ","transactionID":"{{dtx}}","authType":"RECOVERY","otp":"ABCD-EFGH","apiKey":"{{key}}"}`, "[::1]:80", "", "application/json")
	f.Add(uint8(1), `{"username":"fuzz","transactionID":"{{dtx}}","authType":"SMS","otp":"1","apiKey":"{{key}}"}`, "1.2.3.4, 5.6.7.8", "https://cms.test", "application/json")
	f.Add(uint8(0), `{"apiKey":"{{key}}"}`, "fe80::1%eth0", "", "text/plain")
	z := newFuzzApp(f)
	f.Fuzz(func(t *testing.T, step uint8, body, endUser, origin, ct string) {
		path := "/headless/" + steps[int(step)%len(steps)]
		body = z.expand(body)
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		header(req, "X-End-User-IP", endUser)
		header(req, "Origin", origin)
		header(req, "Content-Type", ct)
		z.check(t, path, []byte(body+origin+endUser), z.do(req, ""), "application/json")
	})
}
