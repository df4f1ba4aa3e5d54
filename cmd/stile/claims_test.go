package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestStandardClaims: the profile, email, phone and address scopes, and
// the claims parameter, return the standard claims stile has — the
// username and email of the account, the rest from its attributes — in
// userinfo; the ID token carries them only when asked for by name, since
// an access token is always issued.
func TestStandardClaims(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t))
	f.s.db.UpdateUser(t.Context(), f.alice.ID, func(u *storage.User) error {
		u.Attributes["name"] = "Alice Liddell"
		u.Attributes["phone_number"] = "+44 20 7946 0000"
		u.Attributes["address"] = map[string]any{"locality": "Oxford", "country": "GB"}
		return nil
	})
	b := newBrowser(t, f.s)
	az := f.rp.authorize("scope", "openid profile email phone address")
	tok := f.tokens(t, f.signIn(t, b, az, f.alice), az)
	info, err := f.rp.userinfo(tok)
	if err != nil {
		t.Fatal(err)
	}
	address, _ := info["address"].(map[string]any)
	if info["name"] != "Alice Liddell" || info["preferred_username"] != "alice" || info["email"] != "alice@example.com" ||
		info["phone_number"] != "+44 20 7946 0000" || address["locality"] != "Oxford" {
		t.Fatalf("userinfo for every scope = %v", info)
	}
	if id := f.rp.idClaims(tok, az.nonce); id["name"] != nil || id["email"] != nil {
		t.Fatalf("scope claims in an ID token issued with an access token: %v", id)
	}

	// The claims parameter asks by name, without the scope.
	claims := `{"userinfo":{"name":{"essential":true}},"id_token":{"email":null}}`
	az = f.rp.authorize("scope", "openid", "claims", claims)
	tok = f.tokens(t, f.silent(t, b, az), az)
	info, _ = f.rp.userinfo(tok)
	if info["name"] != "Alice Liddell" || info["email"] != nil {
		t.Fatalf("userinfo with claims={userinfo:{name}} = %v", info)
	}
	if id := f.rp.idClaims(tok, az.nonce); id["email"] != "alice@example.com" || id["name"] != nil {
		t.Fatalf("ID token with claims={id_token:{email}} = %v", id)
	}
	// A malformed claims parameter is refused back to the client.
	loc := b.get(f.rp.authorize("claims", "{not json").url).location(t)
	if loc.Query().Get("error") != "invalid_request" {
		t.Fatalf("malformed claims: %s", loc)
	}
}

// TestUnsupportedRequestParameters: request objects, request_uri and
// form_post are refused with the error the client can act on, and the
// response says which issuer answered.
func TestUnsupportedRequestParameters(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t))
	b := newBrowser(t, f.s)
	for param, want := range map[string][2]string{
		"request":       {"eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9.", "request_not_supported"},
		"request_uri":   {"https://app.example.com/request.jwt", "request_uri_not_supported"},
		"response_mode": {"form_post", "invalid_request"},
	} {
		az := f.rp.authorize(param, want[0])
		loc := b.get(az.url).location(t)
		if loc.Query().Get("error") != want[1] || loc.Query().Get("state") != az.state || loc.Query().Get("iss") != f.s.URL {
			t.Errorf("%s: redirected to %s, want %s with state and iss", param, loc, want[1])
		}
	}
	// Fragment response mode carries the code and iss in the fragment.
	az := f.rp.authorize("response_mode", "fragment")
	loc := f.finish(t, b, f.otpPage(t, b, az, f.alice), f.s.code(t, f.alice))
	frag, _ := url.ParseQuery(loc.Fragment)
	if frag.Get("code") == "" || frag.Get("iss") != f.s.URL || frag.Get("state") != az.state || loc.RawQuery != "" {
		t.Fatalf("fragment response: %s", loc)
	}
}

// TestOTPExemption: an operator can exempt a dedicated test account from
// the second factor; it then signs in with the password alone, the ID token
// says so (amr without otp and mfa), and every such sign-in is logged.
func TestOTPExemption(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t))
	tester := f.s.addUser(t, "conformance", false)
	b := newBrowser(t, f.s)
	if p := b.submit(f.passwordPage(t, b, f.rp.authorize()), map[string]string{"username": "conformance", "password": tester.password}); p.status != 403 {
		t.Fatalf("before the exemption, without TOTP: %d", p.status)
	}
	f.s.stile(t, "user", "update", "conformance", "--otp-exempt")
	if out := f.s.stile(t, "user", "show", "conformance"); !strings.Contains(out, "EXEMPT") {
		t.Fatalf("user show does not show the exemption:\n%s", out)
	}
	az := f.rp.authorize()
	p := b.submit(f.passwordPage(t, b, az), map[string]string{"username": "conformance", "password": tester.password})
	loc := p.location(t)
	id := f.rp.idClaims(f.tokens(t, loc.Query().Get("code"), az), az.nonce)
	if strings.Join(toStrings(id["amr"]), " ") != "pwd" {
		t.Fatalf("amr of an exempt sign-in = %v, want just pwd", id["amr"])
	}
	if !strings.Contains(f.s.logs.String(), "WITHOUT a second factor") {
		t.Fatal("an exempt sign-in was not logged")
	}
	// Other accounts are not affected.
	f.nextStep()
	f.signIn(t, newBrowser(t, f.s), f.rp.authorize(), f.alice)
}
