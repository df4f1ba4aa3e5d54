package conformance

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
)

// authz is one authorization request and the secrets it carries.
type authz struct {
	client   Client
	state    string
	nonce    string
	verifier string // PKCE; "" if the request sends no challenge
	params   url.Values
}

func random() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// request builds a code-flow request for c: scope openid, state and nonce.
// extra are name, value pairs to add or, with an empty value, to remove.
func (m *M) request(c Client, extra ...string) *authz {
	a := &authz{client: c, state: random(), nonce: random(), params: url.Values{
		"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {c.RedirectURI}, "scope": {"openid"},
	}}
	a.params.Set("state", a.state)
	a.params.Set("nonce", a.nonce)
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			a.params.Del(extra[i])
		} else {
			a.params.Set(extra[i], extra[i+1])
		}
	}
	return a
}

// withPKCE adds an S256 code challenge.
func (a *authz) withPKCE() *authz {
	a.verifier = random() + random()
	sum := sha256.Sum256([]byte(a.verifier))
	a.params.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
	a.params.Set("code_challenge_method", "S256")
	return a
}

// response is how an authorization ended: redirected to the client with
// params, or on one of the provider's own pages.
type response struct {
	params url.Values
	page   *Page
}

// authorize sends the request (by GET, or by POST if post), lets the login
// driver through the provider's pages if login, and returns the response.
func (m *M) authorize(b *Browser, a *authz, post, login bool) response {
	endpoint := m.endpoint("authorization_endpoint")
	var p *Page
	var err error
	if post {
		p, err = b.Post(endpoint, a.params)
	} else {
		p, err = b.Get(endpoint + "?" + a.params.Encode())
	}
	if err != nil {
		m.Fatalf("authorization request: %v", err)
	}
	if loc := p.Location(); loc == nil && login && p.Status == http.StatusOK {
		if p, err = m.cfg.Login.Login(b, p); err != nil {
			m.Fatalf("%v", err)
		}
	}
	loc := p.Location()
	if loc == nil || !b.stops(loc.String()) {
		return response{page: p}
	}
	params := loc.Query()
	if loc.Fragment != "" {
		params, _ = url.ParseQuery(loc.Fragment)
	}
	return response{params: params}
}

// code runs an authorization that must succeed and returns its code, after
// the checks every happy flow makes of the response.
func (m *M) code(b *Browser, a *authz, login bool) string {
	r := m.authorize(b, a, false, login)
	return m.codeFrom(r, a)
}

func (m *M) codeFrom(r response, a *authz) string {
	if r.params == nil {
		m.Fatalf("the authorization ended on the provider's page %s (status %d), not at the client", r.page.URL.Redacted(), r.page.Status)
	}
	if e := r.params.Get("error"); e != "" {
		m.Fatalf("authorization error %s: %s", e, r.params.Get("error_description"))
	}
	m.checkIss(r.params)
	m.check(r.params.Get("state") == a.state, "state %q in the response, want %q", r.params.Get("state"), a.state)
	code := r.params.Get("code")
	if code == "" {
		m.Fatalf("no code in the authorization response")
	}
	m.checkEntropy("authorization code", code, 128, 96)
	return code
}

// checkIss checks RFC 9207's iss: required if discovery promises it, and
// equal to the issuer if present.
func (m *M) checkIss(params url.Values) {
	iss, promised := params.Get("iss"), m.disc["authorization_response_iss_parameter_supported"] == true
	switch {
	case iss == "" && promised:
		m.Errorf("no iss in the authorization response, though discovery says it is supported")
	case iss != "" && iss != m.cfg.Issuer:
		m.Errorf("iss %q in the authorization response, want %q", iss, m.cfg.Issuer)
	}
}

// checkEntropy checks a credential's length and estimated entropy, as the
// official suite does: bits of length, and Shannon entropy times length.
func (m *M) checkEntropy(what, v string, minBits, minEntropy float64) {
	m.check(float64(len(v))*6 >= minBits, "%s is %d characters: shorter than %v bits", what, len(v), minBits)
	counts := map[rune]float64{}
	for _, r := range v {
		counts[r]++
	}
	h := 0.0
	for _, c := range counts {
		p := c / float64(len(v))
		h -= p * math.Log2(p)
	}
	m.check(h*float64(len(v)) >= minEntropy, "%s has about %.0f bits of entropy, want %v", what, h*float64(len(v)), minEntropy)
}

// tokenResponse is a token endpoint's answer.
type tokenResponse struct {
	status int
	header http.Header
	body   map[string]any
}

func (t tokenResponse) str(name string) string { s, _ := t.body[name].(string); return s }

// token posts a token request, authenticating as c.
func (m *M) token(c Client, form url.Values) tokenResponse {
	if c.Post {
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	}
	req, _ := http.NewRequest(http.MethodPost, m.endpoint("token_endpoint"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if !c.Post {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	resp, err := m.client().Do(req)
	if err != nil {
		m.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	t := tokenResponse{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &t.body); err != nil {
		m.Fatalf("token endpoint answered %d with a body that is not JSON: %.200s", resp.StatusCode, raw)
	}
	return t
}

// exchange redeems a code and checks the response as every happy flow does.
func (m *M) exchange(a *authz, code string) tokenResponse {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.client.RedirectURI}}
	if a.verifier != "" {
		form.Set("code_verifier", a.verifier)
	}
	t := m.token(a.client, form)
	if t.status != http.StatusOK {
		m.Fatalf("token endpoint: status %d, %v", t.status, t.body)
	}
	m.checkTokenResponse(t)
	return t
}

// checkTokenResponse: JSON, uncacheable, a Bearer access token.
func (m *M) checkTokenResponse(t tokenResponse) {
	m.check(strings.HasPrefix(t.header.Get("Content-Type"), "application/json"), "token response Content-Type %q", t.header.Get("Content-Type"))
	m.check(strings.Contains(t.header.Get("Cache-Control"), "no-store"), "token response without Cache-Control: no-store")
	m.check(strings.EqualFold(t.str("token_type"), "Bearer"), "token_type %q, want Bearer", t.str("token_type"))
	if t.str("access_token") == "" {
		m.Fatalf("no access_token in the token response")
	}
	if _, ok := t.body["expires_in"]; !ok {
		m.Warnf("the token response has no expires_in")
	}
	if t.str("id_token") == "" {
		m.Fatalf("no id_token in the token response")
	}
}

// userinfo calls the userinfo endpoint: GET or POST with the token in the
// header, or POST with it in the body.
func (m *M) userinfo(token, how string) (int, map[string]any) {
	ep := m.endpoint("userinfo_endpoint")
	var req *http.Request
	switch how {
	case "post-body":
		req, _ = http.NewRequest(http.MethodPost, ep, strings.NewReader(url.Values{"access_token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case "post-header":
		req, _ = http.NewRequest(http.MethodPost, ep, nil)
		req.Header.Set("Authorization", "Bearer "+token)
	default:
		req, _ = http.NewRequest(http.MethodGet, ep, nil)
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := m.client().Do(req)
	if err != nil {
		m.Fatalf("userinfo: %v", err)
	}
	defer resp.Body.Close()
	var claims map[string]any
	json.NewDecoder(resp.Body).Decode(&claims)
	return resp.StatusCode, claims
}

// happy runs a whole code flow in b and checks everything a happy flow
// checks: the response, the tokens, the ID token, userinfo.
func (m *M) happy(b *Browser, a *authz, login bool) (tokenResponse, map[string]any) {
	m.checkJWKS()
	t := m.exchange(a, m.code(b, a, login))
	id := m.idToken(t.str("id_token"), a)
	status, info := m.userinfo(t.str("access_token"), "get")
	if status != http.StatusOK {
		m.Fatalf("userinfo: status %d", status)
	}
	m.check(info["sub"] == id["sub"], "userinfo sub %v, ID token sub %v", info["sub"], id["sub"])
	return t, id
}
