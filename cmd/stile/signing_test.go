package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

func signWith(alg string) func(*appConfig) { return func(c *appConfig) { c.SigningAlg = alg } }

// TestSigningAlgorithms: ES256 and EdDSA tokens verify with go-oidc against
// /keys; a client pinned to RS256 gets RS256 beside an ES256 default;
// discovery lists exactly the algorithms that sign; switching the
// algorithm at start publishes the new key before it signs.
func TestSigningAlgorithms(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			t.Run("EdDSA", func(t *testing.T) { testAlgorithm(t, d.URL(t), "EdDSA") })
			t.Run("PinnedBesideES256", func(t *testing.T) { testPinned(t, d.URL(t)) })
			t.Run("SwitchAtStart", func(t *testing.T) { testSwitchAtStart(t, d.URL(t)) })
		})
	}
}

// testAlgorithm signs in on a server whose default is alg: the ID token and
// the JWT access token are signed with it and verify against the JWKS, and
// the provider accepts its own JWT access token at userinfo.
func testAlgorithm(t *testing.T, dbURL, alg string) *fixture {
	f := newFixture(t, dbURL, signWith(alg))
	if got := discoveredAlgs(t, f.s); !slices.Equal(got, []string{alg}) {
		t.Fatalf("discovery id_token_signing_alg_values_supported = %v, want [%s]", got, alg)
	}
	az := f.rp.authorize()
	tok := f.tokens(t, f.signIn(t, newBrowser(t, f.s), az, f.alice), az)
	idToken, _ := tok.Extra("id_token").(string)
	for name, jwt := range map[string]string{"ID token": idToken, "access token": tok.AccessToken} {
		if got := algOf(t, jwt); got != alg {
			t.Fatalf("%s signed with %s, want %s", name, got, alg)
		}
	}
	if c := verifyWith(t, f, idToken, "app", alg); c["sub"] != f.alice.ID {
		t.Fatalf("ID token claims %v", c)
	}
	if c := verifyWith(t, f, tok.AccessToken, apiAudience, alg); c["uid"] != f.alice.ID {
		t.Fatalf("access token claims %v", c)
	}
	if info, err := f.rp.userinfo(tok); err != nil || info["uid"] != f.alice.ID {
		t.Fatalf("userinfo with an %s access token: %v, %v", alg, info, err)
	}
	checkJWKS(t, f.s)
	return f
}

// testPinned: ES256 is the default; a client that only understands RS256
// pins it and gets RS256 tokens, while "app" keeps getting ES256.
func testPinned(t *testing.T, dbURL string) {
	f := testAlgorithm(t, dbURL, "ES256")
	secret := f.s.addClient(t, &storage.Client{ID: "legacy", Type: storage.ClientWeb,
		RedirectURIs: storage.Strings{appRedirect}, RequirePKCE: true, FirstParty: true})
	f.s.stile(t, "client", "update", "legacy", "--id-token-signed-response-alg", "RS256")
	if out := f.s.stile(t, "client", "show", "legacy"); !strings.Contains(out, "RS256") {
		t.Fatalf("client show does not name the pinned algorithm:\n%s", out)
	}
	f.s.clock.Advance(2 * time.Minute) // past the key cache: the CLI made the RS256 key
	if got := discoveredAlgs(t, f.s); !slices.Equal(got, []string{"ES256", "RS256"}) {
		t.Fatalf("discovery lists %v, want [ES256 RS256]", got)
	}
	legacy := newRP(t, f.s, "legacy", secret, appRedirect)
	legacy.config.Scopes = []string{oidc.ScopeOpenID}
	f.nextStep()
	az := legacy.authorize()
	tok, err := legacy.exchange(f.signIn(t, newBrowser(t, f.s), az, f.alice), az.verifier)
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if got := algOf(t, idToken); got != "RS256" {
		t.Fatalf("pinned client's ID token signed with %s, want RS256", got)
	}
	if got := algOf(t, tok.AccessToken); got != "RS256" {
		t.Fatalf("pinned client's access token signed with %s, want RS256", got)
	}
	verifyWith(t, f, idToken, "legacy", "RS256") // a verifier that knows RS256 alone accepts it
	testRotatePinned(t, f, legacy, kidOf(t, idToken))
	// Beside it, the unpinned client still gets ES256, which that verifier refuses.
	f.nextStep()
	az = f.rp.authorize()
	appTok := f.tokens(t, f.signIn(t, newBrowser(t, f.s), az, f.alice), az)
	appID, _ := appTok.Extra("id_token").(string)
	if got := algOf(t, appID); got != "ES256" {
		t.Fatalf("unpinned client's ID token signed with %s, want ES256", got)
	}
	rs256Only := f.rp.provider.Verifier(&oidc.Config{ClientID: "app", SupportedSigningAlgs: []string{"RS256"}})
	if _, err := rs256Only.Verify(t.Context(), appID); err == nil {
		t.Fatal("an RS256-only verifier accepted the ES256 token: the check proves nothing")
	}
	checkJWKS(t, f.s)
}

// testRotatePinned: `keys rotate --alg RS256 --pinned` replaces the pinned
// clients' key after the delay, and the ES256 default stays.
func testRotatePinned(t *testing.T, f *fixture, legacy *relyingParty, oldKid string) {
	var k struct {
		Kid, Alg string
		Default  bool
	}
	jsonInto(t, f.s.stile(t, "keys", "rotate", "--alg", "RS256", "--pinned", "--activate-after", "1h", "--json"), &k)
	if k.Alg != "RS256" || k.Default {
		t.Fatalf("rotate --pinned made %+v, want a next RS256 key that is not the default", k)
	}
	f.s.clock.Advance(time.Hour)
	f.s.maintain(t.Context())
	f.nextStep()
	az := legacy.authorize()
	tok, err := legacy.exchange(f.signIn(t, newBrowser(t, f.s), az, f.alice), az.verifier)
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if kid := kidOf(t, idToken); kid != k.Kid || kid == oldKid {
		t.Fatalf("after the pinned rotation legacy's token is signed by %s, want the new key %s", kid, k.Kid)
	}
	verifyWith(t, f, idToken, "legacy", "RS256")
	if got := discoveredAlgs(t, f.s); !slices.Equal(got, []string{"ES256", "RS256"}) {
		t.Fatalf("discovery after the pinned rotation lists %v, want the ES256 default first, then RS256", got)
	}
}

// testSwitchAtStart: a server runs with RS256; a second instance on the same
// database starts with --signing-alg ES256. The ES256 key is published at
// once but signs only after the overlap; tokens of the RS256 key still
// verify afterwards; once nobody pins RS256 discovery lists ES256 alone.
func testSwitchAtStart(t *testing.T, dbURL string) {
	f := newFixture(t, dbURL)
	oldTok := f.accessToken(t)
	if got := algOf(t, oldTok); got != "RS256" {
		t.Fatalf("default of a new database: %s, want RS256", got)
	}
	raw, err := os.ReadFile(f.s.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	master, _ := base64.StdEncoding.DecodeString(string(raw))
	launch(t, dbURL, launchOptions{clock: f.s.clock, masterKey: master, app: []func(*appConfig){signWith("ES256")}})

	f.s.clock.Advance(2 * time.Minute) // past the first instance's key cache
	if algs := jwksAlgs(t, f.s); !algs["ES256"] || !algs["RS256"] {
		t.Fatalf("JWKS after the switch started: %v, want the ES256 key published beside RS256", algs)
	}
	if got := algOf(t, f.accessToken(t)); got != "RS256" {
		t.Fatalf("the new key signed (%s) before it was published for the overlap", got)
	}
	if got := discoveredAlgs(t, f.s); !slices.Equal(got, []string{"RS256"}) {
		t.Fatalf("discovery during the overlap lists %v, want [RS256]", got)
	}

	f.s.clock.Advance(time.Hour)
	f.s.maintain(t.Context())
	newTok := f.accessToken(t)
	if got := algOf(t, newTok); got != "ES256" {
		t.Fatalf("after the overlap tokens are signed with %s, want ES256", got)
	}
	both := f.rp.provider.Verifier(&oidc.Config{ClientID: apiAudience, SkipExpiryCheck: true,
		SupportedSigningAlgs: []string{"RS256", "ES256"}})
	for name, tok := range map[string]string{"old RS256 key": oldTok, "new ES256 key": newTok} {
		if _, err := both.Verify(t.Context(), tok); err != nil {
			t.Errorf("token signed by the %s: %v", name, err)
		}
	}
	if got := discoveredAlgs(t, f.s); !slices.Equal(got, []string{"ES256"}) {
		t.Fatalf("discovery after the switch lists %v, want [ES256]", got)
	}
}

// TestSigningAlgFlags: unknown algorithms are refused with the list of
// known ones, beside the same commands with a known one.
func TestSigningAlgFlags(t *testing.T) {
	c := newCLI(t)
	c.ok("", "migrate")
	c.fails(`--alg: signing algorithm "RS512": use one of [RS256 ES256 EdDSA]`, "", "keys", "rotate", "--alg", "RS512")
	c.fails(`--signing-alg: signing algorithm "HS256": use one of [RS256 ES256 EdDSA]`, "", "serve", "--signing-alg", "HS256")
	c.fails(`--id-token-signed-response-alg`, "", "client", "add", "--id", "x", "--type", "spa",
		"--redirect-uri", "http://localhost/cb", "--id-token-signed-response-alg", "none")
	c.ok("", "client", "add", "--id", "x", "--type", "spa", "--redirect-uri", "http://localhost/cb",
		"--id-token-signed-response-alg", "EdDSA")

	c.ok("", "keys", "list") // creates nothing, lists the EdDSA key the client's pin made
	out := c.ok("", "keys", "rotate", "--alg", "ES256", "--json")
	var k struct{ Alg, State string }
	jsonInto(t, out, &k)
	if k.Alg != "ES256" || k.State != storage.KeyNext {
		t.Fatalf("rotate --alg ES256 made %+v, want a next ES256 key", k)
	}
	c.fails("already published", "", "keys", "rotate", "--alg", "ES256")
	c.fails("--pinned: name the pinned key's algorithm with --alg", "", "keys", "rotate", "--pinned")
	c.fails("no client-pinned RS256 key signs", "", "keys", "rotate", "--alg", "RS256", "--pinned")
	c.ok("", "keys", "rotate", "--alg", "EdDSA", "--pinned")
	var list []struct{ Alg, State string }
	jsonInto(t, c.ok("", "keys", "list", "--json"), &list)
	if !slices.ContainsFunc(list, func(k struct{ Alg, State string }) bool { return k.Alg == "EdDSA" && k.State == "active" }) {
		t.Fatalf("keys list %v: want the active EdDSA key the pinned client needs", list)
	}
}

// verifyWith verifies a JWT as a relying party that accepts only alg would,
// against the JWKS, and returns its claims.
func verifyWith(t *testing.T, f *fixture, jwt, audience, alg string) map[string]any {
	t.Helper()
	v := f.rp.provider.Verifier(&oidc.Config{ClientID: audience, SupportedSigningAlgs: []string{alg}})
	tok, err := v.Verify(context.Background(), jwt)
	if err != nil {
		t.Fatalf("verify an %s token: %v", alg, err)
	}
	var claims map[string]any
	tok.Claims(&claims)
	return claims
}

func algOf(t *testing.T, jwt string) string {
	t.Helper()
	var h struct{ Alg string }
	if err := json.Unmarshal(decodeSegment(t, strings.Split(jwt, ".")[0]), &h); err != nil {
		t.Fatal(err)
	}
	return h.Alg
}

func discoveredAlgs(t *testing.T, s *server) []string {
	t.Helper()
	resp, err := http.Get(s.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc.Algs
}

// jwksAlgs returns the algorithms of the published keys.
func jwksAlgs(t *testing.T, s *server) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, k := range jwks(t, s) {
		out[k.Alg] = true
	}
	return out
}

type jwk struct{ Kid, Use, Alg, Kty, Crv string }

func jwks(t *testing.T, s *server) []jwk {
	t.Helper()
	resp, err := http.Get(s.URL + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct{ Keys []jwk }
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set.Keys
}

// checkJWKS: every published key names its kid, use and alg, with the key
// type that alg needs.
func checkJWKS(t *testing.T, s *server) {
	t.Helper()
	kty := map[string]string{"RS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}
	for _, k := range jwks(t, s) {
		if k.Kid == "" || k.Use != "sig" || kty[k.Alg] == "" || kty[k.Alg] != k.Kty {
			t.Errorf("JWKS key %+v: want kid, use sig, and an alg with its key type", k)
		}
	}
}
