package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/conformance"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestConformance runs the black-box conformance suite — every Basic OP,
// Config OP and RP-initiated logout module — against stile over https on
// SQLite, and the happy-flow, refresh and logout modules on PostgreSQL.
func TestConformance(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		s, cfg := conformanceTarget(t, storagetest.SQLite(t), launchOptions{})
		conformance.Run(t, cfg)
		checkExemptionUnused(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		_, cfg := conformanceTarget(t, storagetest.Postgres(t), launchOptions{})
		conformance.Run(t, cfg, postgresModules...)
	})
}

var postgresModules = []string{
	"oidcc-server", "oidcc-server-client-secret-post", "oidcc-prompt-none-logged-in", "oidcc-codereuse",
	"oidcc-refresh-token", "oidcc-rp-initiated-logout", "oidcc-rp-initiated-logout-no-id-token-hint",
}

// checkExemptionUnused: the suite signs in with TOTP codes, never through
// the conformance exemption.
func checkExemptionUnused(t *testing.T, s *server) {
	if strings.Contains(s.logs.String(), "WITHOUT a second factor") {
		t.Error("a conformance sign-in skipped the second factor")
	}
}

// conformanceTarget starts stile over https with the clients the official
// suite's static configuration names — client and client2 with
// client_secret_basic and refresh tokens, a client_secret_post client — and
// a pool of users with TOTP enrolled, and returns the suite's configuration
// for it.
func conformanceTarget(t *testing.T, dbURL string, o launchOptions) (*server, conformance.Config) {
	cert, pool := selfSigned(t)
	o.tls = &tls.Config{Certificates: []tls.Certificate{cert}}
	s := launch(t, dbURL, o)
	rp := "https://rp.conformance.example/"
	clients := map[string]*conformance.Client{}
	for _, c := range []struct {
		id    string
		post  bool
		first bool
	}{{"client", false, false}, {"client2", false, true}, {"client-post", true, true}} {
		method := storage.AuthSecretBasic
		if c.post {
			method = storage.AuthSecretPost
		}
		cl := &storage.Client{ID: c.id, Name: "Conformance " + c.id, Type: storage.ClientWeb, AuthMethod: method,
			RedirectURIs: storage.Strings{rp + c.id + "/callback"}, PostLogoutRedirectURIs: storage.Strings{rp + c.id + "/logout"},
			FirstParty: c.first, GrantTypes: storage.Strings{storage.GrantAuthorizationCode, storage.GrantRefreshToken}}
		secret := s.addClient(t, cl)
		clients[c.id] = &conformance.Client{ID: c.id, Secret: secret, RedirectURI: rp + c.id + "/callback",
			PostLogoutRedirectURI: rp + c.id + "/logout", Post: c.post}
	}
	login := &conformance.FormLogin{UsernameField: "username", PasswordField: "password", OTPField: "otp",
		ConsentField: "decision", ConsentValue: "allow"}
	for i := range 8 {
		u := s.addUser(t, fmt.Sprintf("buffy%d", i), true)
		s.db.UpdateUser(t.Context(), u.ID, func(u *storage.User) error {
			u.Attributes["name"] = "Buffy Summers"
			u.Attributes["phone_number"] = "+1 555 0100"
			u.Attributes["address"] = map[string]any{"locality": "Sunnydale", "country": "US"}
			return nil
		})
		login.Accounts = append(login.Accounts, &conformance.Account{Username: u.Username, Password: u.password,
			OTP: &conformance.TOTP{Secret: u.totpSecret, Now: s.clock.Now, Wait: s.clock.Advance}})
	}
	return s, conformance.Config{
		Issuer: s.URL, Client: *clients["client"], Client2: *clients["client2"], PostClient: *clients["client-post"],
		Login: login, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		Wait: s.clock.Advance, Now: s.clock.Now,
	}
}

// selfSigned makes a certificate for 127.0.0.1 and localhost, and a pool
// that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stile test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestConformanceBites shows the suite fails a provider that breaks a rule:
// stile, with one thing switched off in front of it each time.
func TestConformanceBites(t *testing.T) {
	breaks := []struct {
		name, module string
		wrap         func(http.Handler) http.Handler
	}{
		{"JWKS keys without kid", "oidcc-server", rewrite("/keys", func(r *recorded) {
			r.body = []byte(strings.ReplaceAll(string(r.body), `"kid"`, `"x-kid"`))
		})},
		{"no iss in the authorization response", "oidcc-server", rewrite("/authorize/callback", func(r *recorded) {
			r.header.Set("Location", strings.Replace(r.header.Get("Location"), "iss=", "x-iss=", 1))
		})},
		{"token response cacheable", "oidcc-server", rewrite("/oauth/token", func(r *recorded) {
			r.header.Del("Cache-Control")
		})},
		{"a short authorization code", "oidcc-server", rewrite("/authorize/callback", func(r *recorded) {
			loc, _ := url.Parse(r.header.Get("Location"))
			q := loc.Query()
			q.Set("code", "abc")
			loc.RawQuery = q.Encode()
			r.header.Set("Location", loc.String())
		})},
		{"logout redirects on a bad hint", "oidcc-rp-initiated-logout-bad-id-token-hint", rewrite("/end_session", func(r *recorded) {
			if r.status == http.StatusBadRequest {
				r.status = http.StatusFound
				r.header.Set("Location", "https://rp.conformance.example/client/logout?state=s-0")
			}
		})},
		{"an unregistered redirect_uri is redirected to", "oidcc-ensure-registered-redirect-uri", rewrite("/authorize", func(r *recorded) {
			if r.status == http.StatusBadRequest {
				r.status = http.StatusFound
				r.header.Set("Location", "https://rp.conformance.example/client/callback/not-registered?error=invalid_request")
			}
		})},
	}
	for _, br := range breaks {
		t.Run(br.name, func(t *testing.T) {
			_, cfg := conformanceTarget(t, storagetest.SQLite(t), launchOptions{wrap: br.wrap})
			if r := conformance.Check(cfg, br.module); r.Passed() {
				t.Fatalf("%s passed against a stile with %s", br.module, br.name)
			} else {
				t.Logf("%s failed as it should: %v", br.module, r.Failures)
			}
		})
	}
}

// recorded is a response held back so a test can change it.
type recorded struct {
	status int
	header http.Header
	body   []byte
}

// rewrite lets change alter every response to path before it is sent.
func rewrite(path string, change func(*recorded)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != path {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			out := &recorded{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
			change(out)
			for k, v := range out.header {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(out.status)
			w.Write(out.body)
		})
	}
}
