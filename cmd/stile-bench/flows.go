package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/stile-id/stile/conformance"
)

// endpoints are the provider's, from its discovery document.
type endpoints struct {
	Discovery  string `json:"-"`
	Authorize  string `json:"authorization_endpoint"`
	Token      string `json:"token_endpoint"`
	Userinfo   string `json:"userinfo_endpoint"`
	Introspect string `json:"introspection_endpoint"`
	JWKS       string `json:"jwks_uri"`
}

// driver holds what every request shares: the endpoints, the fixture and
// one transport whose idle pool fits the widest step, so connections are
// reused as a real client's would be and the server does not pay a TCP
// handshake per request.
type driver struct {
	ep        endpoints
	fx        *fixture
	transport *http.Transport
	http      *http.Client
	loopback4 bool // the issuer is on 127.0.0.0/8: sign-in workers may use addresses of their own

	mu      sync.Mutex
	sources map[int]*http.Transport // per sign-in worker
}

func newDriver(issuer string, fx *fixture, maxConc int) (*driver, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 4*maxConc+8, 2*maxConc+4
	d := &driver{fx: fx, transport: t, sources: map[int]*http.Transport{}, http: &http.Client{Transport: t, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	d.ep.Discovery = strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	if u, err := url.Parse(issuer); err == nil {
		ip := net.ParseIP(u.Hostname())
		d.loopback4 = ip != nil && ip.To4() != nil && ip.IsLoopback()
	}
	body, err := d.get(d.ep.Discovery, "")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, &d.ep); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if d.ep.Authorize == "" || d.ep.Token == "" || d.ep.JWKS == "" || d.ep.Userinfo == "" || d.ep.Introspect == "" {
		return nil, fmt.Errorf("discovery at %s lacks an endpoint the driver needs: %+v", d.ep.Discovery, d.ep)
	}
	return d, nil
}

// get fetches a URL (with a bearer token if given) and wants a 200.
func (d *driver) get(rawURL, bearer string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return d.do(req)
}

// post sends a form with client authentication and wants a 200.
func (d *driver) post(rawURL string, c client, form url.Values) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	return d.do(req)
}

func (d *driver) do(req *http.Request) ([]byte, error) {
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: status %d: %.200s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	return body, nil
}

// tokens is a token endpoint's answer.
type tokens struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
}

// signatures counts the JWS the server had to sign for this answer: the ID
// token and a JWT access token; an opaque token or a refresh token is a
// random string and costs none.
func (t tokens) signatures() int {
	n := 0
	for _, s := range []string{t.IDToken, t.AccessToken} {
		if isJWS(s) {
			n++
		}
	}
	return n
}

func isJWS(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	var hdr struct{ Alg string }
	return err == nil && json.Unmarshal(h, &hdr) == nil && hdr.Alg != "" && hdr.Alg != "none"
}

// tokenCall posts to the token endpoint and decodes the answer.
func (d *driver) tokenCall(c client, form url.Values) (tokens, error) {
	body, err := d.post(d.ep.Token, c, form)
	var t tokens
	if err == nil {
		err = json.Unmarshal(body, &t)
	}
	if err == nil && t.AccessToken == "" {
		err = fmt.Errorf("token endpoint: no access_token for %s", form.Get("grant_type"))
	}
	return t, err
}

// newBrowser is a person's browser: a cookie jar that follows stile's
// redirects and stops at the client's redirect URI.
func (d *driver) newBrowser() *conformance.Browser {
	return conformance.NewBrowser(d.transport, d.fx.redirect)
}

// browserFrom is a new browser of sign-in worker w, which connects from a
// loopback address of its own (127.0.1.w+1) when the issuer is on IPv4
// loopback. Concurrent sign-ins come from different people: stile counts
// the guesses in flight per source address (20 at once by default) and
// would refuse a 32-wide step from one address with 429 — its limit
// working, not the cost the benchmark measures.
func (d *driver) browserFrom(w int) *conformance.Browser {
	if !d.loopback4 {
		return d.newBrowser()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.sources[w]
	if !ok {
		t = d.transport.Clone()
		t.MaxIdleConnsPerHost = 4
		dialer := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+w/250), byte(1+w%250))}}
		t.DialContext = dialer.DialContext
		d.sources[w] = t
	}
	return conformance.NewBrowser(t, d.fx.redirect)
}

// authorizeURL builds an authorization request with state, nonce and S256
// PKCE, and returns it with the verifier.
func (d *driver) authorizeURL(scope string, extra ...string) (string, string) {
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {d.fx.app.ID}, "redirect_uri": {d.fx.redirect},
		"scope": {scope}, "state": {rand.Text()}, "nonce": {rand.Text()},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return d.ep.Authorize + "?" + q.Encode(), verifier
}

// codeFrom reads the code off the page that stopped at the redirect URI.
func (d *driver) codeFrom(p *conformance.Page, step string) (string, error) {
	loc := p.Location()
	if loc == nil || !strings.HasPrefix(loc.String(), d.fx.redirect) {
		return "", fmt.Errorf("%s: status %d at %s, not a redirect to the client", step, p.Status, p.URL.Path)
	}
	code := loc.Query().Get("code")
	if code == "" {
		return "", fmt.Errorf("%s: redirected without a code: error=%s", step, loc.Query().Get("error"))
	}
	return code, nil
}

// signIn runs the two-step sign-in on stile's own pages — /authorize, the
// password form, the code form, the callback — and redeems the code with
// its PKCE verifier.
func (d *driver) signIn(b *conformance.Browser, a *account, scope string) (tokens, error) {
	authURL, verifier := d.authorizeURL(scope)
	p, err := b.Get(authURL)
	if err != nil {
		return tokens{}, err
	}
	if p, err = d.submit(b, p, "password", map[string]string{"username": a.Username, "password": a.Password}); err != nil {
		return tokens{}, err
	}
	code, err := totp.GenerateCode(a.TOTPSecret, time.Now())
	if err != nil {
		return tokens{}, fmt.Errorf("totp code: %w", err)
	}
	if p, err = b.Submit(p, map[string]string{"otp": code}); err != nil {
		return tokens{}, err
	}
	c, err := d.codeFrom(p, "one-time code")
	if err != nil {
		return tokens{}, err
	}
	return d.exchange(c, verifier)
}

// submit fills and submits the page's form and wants a page with a form
// back (the next step).
func (d *driver) submit(b *conformance.Browser, p *conformance.Page, step string, fields map[string]string) (*conformance.Page, error) {
	if p.Status != http.StatusOK {
		return nil, fmt.Errorf("%s: the form page answered %d at %s", step, p.Status, p.URL.Path)
	}
	next, err := b.Submit(p, fields)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", step, err)
	}
	if _, ok := next.Form(); next.Status != http.StatusOK || !ok {
		return nil, fmt.Errorf("%s: answered %d at %s without the next form", step, next.Status, next.URL.Path)
	}
	return next, nil
}

// silent is a silent SSO sign-in: prompt=none with the session cookie,
// then the code exchange.
func (d *driver) silent(b *conformance.Browser) (tokens, error) {
	authURL, verifier := d.authorizeURL("openid profile", "prompt", "none")
	p, err := b.Get(authURL)
	if err != nil {
		return tokens{}, err
	}
	c, err := d.codeFrom(p, "prompt=none")
	if err != nil {
		return tokens{}, err
	}
	return d.exchange(c, verifier)
}

func (d *driver) exchange(code, verifier string) (tokens, error) {
	return d.tokenCall(d.fx.app, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {d.fx.redirect}, "code_verifier": {verifier}})
}

func (d *driver) refresh(rt string) (tokens, error) {
	t, err := d.tokenCall(d.fx.app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if err == nil && (t.RefreshToken == "" || t.RefreshToken == rt) {
		err = fmt.Errorf("refresh: no rotated refresh token")
	}
	return t, err
}

func (d *driver) clientCredentials() (tokens, error) {
	return d.tokenCall(d.fx.cc, url.Values{"grant_type": {"client_credentials"}, "scope": {"bench:read"}})
}

// introspect asks about an access token as the client it was issued to,
// and wants it active.
func (d *driver) introspect(at string) error {
	body, err := d.post(d.ep.Introspect, d.fx.app, url.Values{"token": {at}})
	if err != nil {
		return err
	}
	var r struct{ Active bool }
	if err := json.Unmarshal(body, &r); err != nil || !r.Active {
		return fmt.Errorf("introspection: token not active (%v)", err)
	}
	return nil
}
