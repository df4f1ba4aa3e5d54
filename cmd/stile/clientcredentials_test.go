package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// ccFixture is the sign-in fixture ("app" without client_credentials,
// alice) plus machine clients: "svc" (JWT access tokens, made with the
// CLI as an operator would), "svc-opaque", "bare" (the grant, no allowed
// scope), "api" (the resource server svc's tokens are for: their aud),
// "other" (a confidential client they are not for) and "spa" (public).
type ccFixture struct {
	*fixture
	secrets map[string]string
}

const machineScopes = "api:read api:write"

func newCCFixture(t *testing.T, dbURL string, opts ...func(*appConfig)) *ccFixture {
	f := &ccFixture{fixture: newFixture(t, dbURL, opts...), secrets: map[string]string{}}
	var made map[string]any
	jsonInto(t, f.s.stile(t, "client", "add", "--id", "svc", "--type", "web", "--grant-type", "client_credentials",
		"--scope", "api:read", "--scope", "api:write", "--audience", "api", "--json"), &made)
	f.secrets["svc"], _ = made["client_secret"].(string)
	add := func(c *storage.Client) { f.secrets[c.ID] = f.s.addClient(t, c) }
	machine := func(id, format string, scopes ...string) *storage.Client {
		return &storage.Client{ID: id, Type: storage.ClientWeb, GrantTypes: storage.Strings{storage.GrantClientCredentials},
			AccessTokenFormat: format, Audiences: storage.Strings{"api"}, AllowedScopes: scopes}
	}
	add(machine("svc-opaque", storage.TokenFormatOpaque, "api:read", "api:write"))
	add(machine("bare", storage.TokenFormatJWT))
	for _, id := range []string{"api", "other"} {
		add(&storage.Client{ID: id, Type: storage.ClientWeb, RedirectURIs: storage.Strings{"https://" + id + ".example.com/cb"}})
	}
	add(&storage.Client{ID: "spa", Type: storage.ClientSPA, RedirectURIs: storage.Strings{"https://spa.example.com/cb"}})
	return f
}

// grant asks for a client_credentials token with client_secret_basic;
// scope "" sends none.
func (f *ccFixture) grant(t *testing.T, clientID, secret, scope string) (*http.Response, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return rawToken(t, f.s, form, clientID, secret)
}

// token is a granted access token; it fails the test otherwise.
func (f *ccFixture) token(t *testing.T, clientID, scope string) string {
	t.Helper()
	resp, body := f.grant(t, clientID, f.secrets[clientID], scope)
	access, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || access == "" {
		t.Fatalf("client_credentials for %s, scope %q: %d %v", clientID, scope, resp.StatusCode, body)
	}
	return access
}

// TestClientCredentials drives the client_credentials grant as machine
// clients and resource servers would, on SQLite and on PostgreSQL.
func TestClientCredentials(t *testing.T) {
	scenarios := []struct {
		name string
		fn   func(*testing.T, *ccFixture)
	}{
		{"JWTAccessToken", testCCJWT},
		{"OpaqueAccessToken", testCCOpaque},
		{"IntrospectionAndRevocation", testCCIntrospection},
		{"Scopes", testCCScopes},
		{"RefusedClients", testCCRefusals},
		{"NoUserinfo", testCCUserinfo},
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { sc.fn(t, newCCFixture(t, d.URL(t))) })
			}
		})
	}
}

// testCCJWT: a JWT access token that go-oidc verifies against the JWKS as
// a resource server would, for the client itself (sub, client_id), for
// its audience, with the granted scope; the response has no refresh or ID
// token, and discovery offers the grant.
func testCCJWT(t *testing.T, f *ccFixture) {
	resp, body := f.grant(t, "svc", f.secrets["svc"], "api:read")
	if resp.StatusCode != http.StatusOK || body["token_type"] != "Bearer" || body["scope"] != "api:read" ||
		body["expires_in"] == nil || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("client_credentials: %d %v (Cache-Control %q)", resp.StatusCode, body, resp.Header.Get("Cache-Control"))
	}
	for _, k := range []string{"refresh_token", "id_token"} {
		if body[k] != nil {
			t.Errorf("the response carries a %s: %v", k, body)
		}
	}
	tok := &oauth2.Token{AccessToken: body["access_token"].(string)}
	claims := f.rp.accessClaims(tok, "api")
	if claims["sub"] != "svc" || claims["client_id"] != "svc" || claims["scope"] != "api:read" || claims["iss"] != f.s.URL {
		t.Fatalf("access token claims = %v", claims)
	}
	for _, k := range []string{op.ClaimUID, op.ClaimRoles, op.ClaimAttributes} {
		if _, ok := claims[k]; ok {
			t.Errorf("a client's own token carries the user claim %s: %v", k, claims)
		}
	}
	// Beside the verification for "api": a backend that is not in its aud
	// refuses it.
	if _, err := f.rp.provider.Verifier(&oidc.Config{ClientID: "other"}).Verify(context.Background(), tok.AccessToken); err == nil {
		t.Error("a verifier for another audience accepted the token")
	}
	var disc struct {
		Grants []string `json:"grant_types_supported"`
	}
	if err := f.rp.provider.Claims(&disc); err != nil || !slices.Contains(disc.Grants, "client_credentials") {
		t.Errorf("discovery grant_types_supported = %v (%v)", disc.Grants, err)
	}
}

// testCCOpaque: an opaque client gets an opaque token through a standard
// OAuth client library, with no refresh token; it is no JWT (go-oidc
// refuses it) and introspection describes it. The JWT client beside it is
// the positive control of the verification.
func testCCOpaque(t *testing.T, f *ccFixture) {
	cfg := clientcredentials.Config{ClientID: "svc-opaque", ClientSecret: f.secrets["svc-opaque"],
		TokenURL: f.s.URL + "/oauth/token", Scopes: []string{"api:write"}, AuthStyle: oauth2.AuthStyleInHeader}
	tok, err := cfg.Token(context.Background())
	if err != nil {
		t.Fatalf("client_credentials for an opaque client: %v", err)
	}
	if tok.RefreshToken != "" || tok.Extra("id_token") != nil || tok.Extra("scope") != "api:write" || !tok.Expiry.After(time.Now()) {
		t.Fatalf("token response = %+v, scope %v", tok, tok.Extra("scope"))
	}
	verify := func(raw string) error {
		_, err := f.rp.provider.Verifier(&oidc.Config{ClientID: "api"}).Verify(context.Background(), raw)
		return err
	}
	if verify(tok.AccessToken) == nil || strings.Count(tok.AccessToken, ".") == 2 {
		t.Errorf("the opaque client's token is a JWT: %s", tok.AccessToken)
	}
	if err := verify(f.token(t, "svc", "")); err != nil {
		t.Errorf("the JWT client's token does not verify: %v", err)
	}
	got := f.introspect(t, tok.AccessToken, "svc-opaque", f.secrets["svc-opaque"])
	if got["active"] != true || got["sub"] != "svc-opaque" || got["scope"] != "api:write" {
		t.Fatalf("introspection of the opaque token = %v", got)
	}
}

// testCCIntrospection: for both formats, introspection answers active to
// the client itself and to its audience, inactive to anyone else; another
// client cannot revoke it, its own client can, and then it is inactive
// for everyone.
func testCCIntrospection(t *testing.T, f *ccFixture) {
	for _, id := range []string{"svc", "svc-opaque"} {
		access := f.token(t, id, "")
		active := func(caller string) map[string]any {
			return f.introspect(t, access, caller, f.secrets[caller])
		}
		got := active(id)
		if got["active"] != true || got["sub"] != id || got["client_id"] != id || got["scope"] != machineScopes ||
			!slices.Contains(toStrings(got["aud"]), "api") || got["iss"] != f.s.URL || got[op.ClaimUID] != nil {
			t.Fatalf("%s: introspection by itself = %v", id, got)
		}
		if got := active("api"); got["active"] != true || got["sub"] != id {
			t.Fatalf("%s: introspection by its audience = %v", id, got)
		}
		if got := active("other"); got["active"] != false || len(got) != 1 {
			t.Fatalf("%s: introspection by a client it is not for = %v", id, got)
		}
		f.revoke(t, access, "", "other", f.secrets["other"])
		if got := active(id); got["active"] != true {
			t.Fatalf("%s: another client's revocation ended it: %v", id, got)
		}
		if status := f.revoke(t, access, "", id, f.secrets[id]); status != http.StatusOK {
			t.Fatalf("%s: revocation by its client: %d", id, status)
		}
		for _, caller := range []string{id, "api"} {
			if got := active(caller); got["active"] != false {
				t.Fatalf("%s: introspection by %s after revocation = %v", id, caller, got)
			}
		}
	}
}

// testCCScopes: only scopes the operator allowed the client are granted;
// none asked for grants every allowed one; a client allowed none gets a
// token without scope.
func testCCScopes(t *testing.T, f *ccFixture) {
	for _, tc := range []struct {
		client, ask string
		want        string // the granted scope; "!": invalid_scope
	}{
		{"svc", "api:read", "api:read"},
		{"svc", "api:admin", "!"},
		{"svc", "api:read api:admin", "!"},
		{"svc", "openid", "!"},
		{"svc", "api:write api:read api:write", "api:write api:read"},
		{"svc", "", machineScopes},
		{"bare", "", ""},
		{"bare", "api:read", "!"},
	} {
		resp, body := f.grant(t, tc.client, f.secrets[tc.client], tc.ask)
		if tc.want == "!" {
			if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_scope" || body["access_token"] != nil {
				t.Errorf("%s asking %q: %d %v, want invalid_scope", tc.client, tc.ask, resp.StatusCode, body)
			}
			continue
		}
		scope, _ := body["scope"].(string)
		if resp.StatusCode != http.StatusOK || scope != tc.want {
			t.Errorf("%s asking %q: %d %v, want scope %q", tc.client, tc.ask, resp.StatusCode, body, tc.want)
			continue
		}
		claims := f.rp.accessClaims(&oauth2.Token{AccessToken: body["access_token"].(string)}, "api")
		if claims["scope"] != tc.want {
			t.Errorf("%s asking %q: the token's scope claim is %v", tc.client, tc.ask, claims["scope"])
		}
	}
}

// testCCRefusals: a client without the grant is unauthorized_client even
// with its right secret; a public client, a wrong secret and an unknown
// client are invalid_client. Beside them, the same requests from svc with
// its secret succeed, by Basic and in the body.
func testCCRefusals(t *testing.T, f *ccFixture) {
	refused := func(what, clientID, secret, want string, status int) {
		t.Helper()
		resp, body := f.grant(t, clientID, secret, "")
		if resp.StatusCode != status || body["error"] != want || body["access_token"] != nil {
			t.Errorf("%s: %d %v, want %d %s", what, resp.StatusCode, body, status, want)
		}
	}
	refused("a client without the grant", "app", f.secret, "unauthorized_client", http.StatusBadRequest)
	refused("a wrong secret", "svc", f.secrets["other"], "invalid_client", http.StatusUnauthorized)
	refused("no secret", "svc", "", "invalid_client", http.StatusUnauthorized)
	refused("an unknown client", "nobody", f.secrets["svc"], "invalid_client", http.StatusUnauthorized)
	f.token(t, "svc", "")
	for _, form := range []string{"grant_type=client_credentials&client_id=spa", "grant_type=client_credentials&client_id=svc"} {
		a := send(t, http.MethodPost, f.s.URL+"/oauth/token", "application/x-www-form-urlencoded", form)
		jsonError(t, form, a, http.StatusUnauthorized, "invalid_client")
	}
	a := send(t, http.MethodPost, f.s.URL+"/oauth/token", "application/x-www-form-urlencoded",
		"grant_type=client_credentials&client_id=svc&client_secret="+url.QueryEscape(f.secrets["svc"]))
	if a.status != http.StatusOK || !strings.Contains(a.body, `"access_token"`) {
		t.Errorf("client_secret_post: %d %s", a.status, a.body)
	}
}

// testCCUserinfo: a client's own token names no user, so userinfo refuses
// it as RFC 6750 says (401 invalid_token), in both formats; a user's
// token from a sign-in is the positive control.
func testCCUserinfo(t *testing.T, f *ccFixture) {
	for _, id := range []string{"svc", "svc-opaque"} {
		req, _ := http.NewRequest(http.MethodGet, f.s.URL+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+f.token(t, id, ""))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("userinfo with %s's token: %d %q", id, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		// Nor does it open the self-service API, which acts for a user.
		req, _ = http.NewRequest(http.MethodGet, f.s.URL+"/account/api/mfa", nil)
		req.Header.Set("Authorization", "Bearer "+f.token(t, id, ""))
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("self-service with %s's token: %d, want 401", id, resp.StatusCode)
		}
	}
	user := f.offline(t)["access_token"].(string)
	if status := f.userinfoStatus(t, user); status != http.StatusOK {
		t.Errorf("userinfo with alice's token: %d", status)
	}
}

// TestClientCredentialsLimit: the grant counts against the token
// endpoint's per-address limit like every other call there.
func TestClientCredentialsLimit(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newCCFixture(t, d.URL(t), trustLoopback, func(c *appConfig) {
				c.OPLimits = &op.Limits{AuthorizePerAddress: storage.Rate{Limit: 5, Per: time.Minute},
					TokenPerAddress: storage.Rate{Limit: 3, Per: time.Minute}}
			})
			call := func(addr string) answer {
				req, _ := http.NewRequest(http.MethodPost, f.s.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("svc", f.secrets["svc"])
				return from(t, addr, req)
			}
			const attacker, bystander = "192.0.2.60", "198.51.100.60"
			for i := range 3 {
				if a := call(attacker); a.status != http.StatusOK {
					t.Fatalf("grant %d within the limit: %d %s", i+1, a.status, a.body)
				}
			}
			if a := call(attacker); a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
				t.Fatalf("grant over the limit: %d %s", a.status, a.body)
			}
			if a := call(bystander); a.status != http.StatusOK {
				t.Fatalf("another address: %d %s", a.status, a.body)
			}
		})
	}
}
