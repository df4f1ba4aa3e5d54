package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/stile-id/stile/storage"
)

// offline signs alice in to "app" with offline_access and returns the
// token response as the client received it.
func (f *fixture) offline(t *testing.T) map[string]any {
	t.Helper()
	b := newBrowser(t, f.s)
	az := f.rp.authorize("scope", "openid profile offline_access")
	code := f.signIn(t, b, az, f.alice)
	resp, body := rawToken(t, f.s, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {appRedirect}, "code_verifier": {az.verifier}}, "app", f.secret)
	if resp.StatusCode != http.StatusOK || body["refresh_token"] == nil {
		t.Fatalf("code exchange with offline_access: %d %v", resp.StatusCode, body)
	}
	return body
}

// refresh uses a refresh token as client clientID.
func (f *fixture) refresh(t *testing.T, token, clientID, secret string) (int, map[string]any) {
	t.Helper()
	resp, body := rawToken(t, f.s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}, clientID, secret)
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("refresh response Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	return resp.StatusCode, body
}

// introspect asks /oauth/introspect about a token, as client clientID.
func (f *fixture) introspect(t *testing.T, token, clientID, secret string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.s.URL+"/oauth/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("introspection as %s: status %d, not JSON: %v", clientID, resp.StatusCode, err)
	}
	return out
}

// revoke posts to /revoke as client clientID.
func (f *fixture) revoke(t *testing.T, token, hint, clientID, secret string) int {
	t.Helper()
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	req, _ := http.NewRequest(http.MethodPost, f.s.URL+"/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (f *fixture) userinfoStatus(t *testing.T, access string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.s.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func testRefresh(t *testing.T, f *fixture) {
	first := f.offline(t)
	rt1 := first["refresh_token"].(string)
	firstID := f.verifyID(t, first)

	f.s.clock.Advance(time.Minute)
	status, second := f.refresh(t, rt1, "app", f.secret)
	if status != http.StatusOK || second["refresh_token"] == rt1 || second["refresh_token"] == nil {
		t.Fatalf("refresh: %d %v (the token must rotate)", status, second)
	}
	refreshedID := f.verifyID(t, second)
	for _, claim := range []string{"sub", "auth_time", "azp", "sid"} {
		if refreshedID[claim] != firstID[claim] {
			t.Errorf("refreshed ID token %s = %v, want %v", claim, refreshedID[claim], firstID[claim])
		}
	}
	rt2 := second["refresh_token"].(string)

	// Another client cannot use it, even with valid credentials of its own.
	otherSecret := f.s.addClient(t, &storage.Client{ID: "other", Type: storage.ClientWeb, FirstParty: true,
		RedirectURIs: storage.Strings{appRedirect}, RequirePKCE: true,
		GrantTypes: storage.Strings{storage.GrantAuthorizationCode, storage.GrantRefreshToken}})
	if status, body := f.refresh(t, rt2, "other", otherSecret); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh token of another client: %d %v", status, body)
	}

	// Within the grace window the used token still works (a lost response retried)…
	f.s.clock.Advance(time.Second)
	status, retried := f.refresh(t, rt1, "app", f.secret)
	if status != http.StatusOK {
		t.Fatalf("reuse within the grace window: %d %v", status, retried)
	}
	// …after it, reuse revokes the whole family, the newest tokens too.
	f.s.clock.Advance(3 * time.Second)
	if status, body := f.refresh(t, rt1, "app", f.secret); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("reuse after the grace window: %d %v", status, body)
	}
	if status, _ := f.refresh(t, rt2, "app", f.secret); status != http.StatusBadRequest {
		t.Fatalf("the family's newest refresh token survived the reuse: %d", status)
	}
	if s := f.userinfoStatus(t, second["access_token"].(string)); s != http.StatusUnauthorized {
		t.Fatalf("an access token of the revoked family still works at userinfo: %d", s)
	}
	// A fresh sign-in starts a new family that works.
	f.nextStep()
	if status, _ := f.refresh(t, f.offline(t)["refresh_token"].(string), "app", f.secret); status != http.StatusOK {
		t.Fatalf("new family: %d", status)
	}
}

// verifyID checks the ID token of a token response with go-oidc.
func (f *fixture) verifyID(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	raw, _ := body["id_token"].(string)
	idt, err := f.rp.provider.Verifier(&oidc.Config{ClientID: "app"}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims map[string]any
	idt.Claims(&claims)
	return claims
}

func testRefreshExpiry(t *testing.T, f *fixture) {
	// Idle: a refresh token unused for 14 days expires; used, it lives on.
	rt := f.offline(t)["refresh_token"].(string)
	f.s.clock.Advance(13 * 24 * time.Hour)
	status, body := f.refresh(t, rt, "app", f.secret)
	if status != http.StatusOK {
		t.Fatalf("refresh after 13 idle days: %d %v", status, body)
	}
	rt = body["refresh_token"].(string)
	f.s.clock.Advance(14*24*time.Hour + time.Minute)
	if status, _ := f.refresh(t, rt, "app", f.secret); status != http.StatusBadRequest {
		t.Fatalf("refresh after 14 idle days: %d", status)
	}

	// Absolute: a client's absolute lifetime ends the family however busy.
	f.s.db.UpdateClient(t.Context(), "app", func(c *storage.Client) error {
		c.RefreshTokenAbsolute = storage.Seconds(3 * time.Hour)
		return nil
	})
	f.nextStep()
	rt = f.offline(t)["refresh_token"].(string)
	for range 2 {
		f.s.clock.Advance(time.Hour)
		if status, body = f.refresh(t, rt, "app", f.secret); status != http.StatusOK {
			t.Fatalf("refresh within the absolute lifetime: %d %v", status, body)
		}
		rt = body["refresh_token"].(string)
	}
	f.s.clock.Advance(61 * time.Minute)
	if status, _ := f.refresh(t, rt, "app", f.secret); status != http.StatusBadRequest {
		t.Fatalf("refresh past the absolute lifetime: %d", status)
	}
}

func testRevocationAndIntrospection(t *testing.T, f *fixture) {
	// The API that receives the token is a confidential client of its own,
	// named in the calling client's audiences.
	api := f.s.addClient(t, &storage.Client{ID: "api", Type: storage.ClientWeb, RedirectURIs: storage.Strings{"https://api.example.com/none"}})
	f.s.db.UpdateClient(t.Context(), "app", func(c *storage.Client) error {
		c.Audiences = append(c.Audiences, "api")
		return nil
	})
	stranger := f.s.addClient(t, &storage.Client{ID: "stranger", Type: storage.ClientWeb, RedirectURIs: storage.Strings{"https://x.example.com/cb"}})
	tokens := f.offline(t)
	access, rt := tokens["access_token"].(string), tokens["refresh_token"].(string)

	// The client and the audience (the resource server) learn everything…
	for _, caller := range [][2]string{{"app", f.secret}, {"api", api}} {
		got := f.introspect(t, access, caller[0], caller[1])
		attrs, _ := got["attributes"].(map[string]any)
		if got["active"] != true || got["client_id"] != "app" || got["uid"] != f.alice.ID || got["sub"] != f.alice.ID ||
			!strings.Contains(got["scope"].(string), "offline_access") || got["exp"] == nil || got["iat"] == nil ||
			attrs["plan"] != "pro" || strings.Join(toStrings(got["roles"]), ",") != "editor,reviewer" ||
			!strings.Contains(mustJSON(got["aud"]), `"api"`) {
			t.Errorf("introspection as %s: %v", caller[0], got)
		}
	}
	// …a client the token is neither for nor from learns nothing.
	if got := f.introspect(t, access, "stranger", stranger); got["active"] != false || len(got) != 1 {
		t.Errorf("introspection by a stranger: %v", got)
	}

	// Revoking the access token: userinfo and introspection refuse it.
	if s := f.revoke(t, access, "access_token", "stranger", stranger); s == http.StatusOK {
		t.Error("a stranger revoked the token")
	}
	if f.introspect(t, access, "app", f.secret)["active"] != true {
		t.Fatal("a stranger's revocation took effect")
	}
	if s := f.revoke(t, access, "access_token", "app", f.secret); s != http.StatusOK {
		t.Fatalf("revoke access token: %d", s)
	}
	if got := f.introspect(t, access, "app", f.secret); got["active"] != false {
		t.Errorf("revoked access token introspects as %v", got)
	}
	if s := f.userinfoStatus(t, access); s != http.StatusUnauthorized {
		t.Errorf("revoked access token at userinfo: %d", s)
	}

	// Revoking the refresh token ends its family: refresh is refused.
	status, body := f.refresh(t, rt, "app", f.secret)
	if status != http.StatusOK {
		t.Fatalf("refresh before revocation: %d %v", status, body)
	}
	rt2, access2 := body["refresh_token"].(string), body["access_token"].(string)
	if s := f.revoke(t, rt2, "", "app", f.secret); s != http.StatusOK {
		t.Fatalf("revoke refresh token: %d", s)
	}
	if status, _ := f.refresh(t, rt2, "app", f.secret); status != http.StatusBadRequest {
		t.Fatalf("refresh with a revoked token: %d", status)
	}
	if got := f.introspect(t, access2, "app", f.secret); got["active"] != false {
		t.Errorf("access token of a revoked refresh token: %v", got)
	}
	// Unknown tokens are not an error (RFC 7009).
	if s := f.revoke(t, "no-such-token", "", "app", f.secret); s != http.StatusOK {
		t.Errorf("revoke unknown token: %d", s)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func testOpaqueAccessTokens(t *testing.T, f *fixture) {
	f.s.db.UpdateClient(t.Context(), "app", func(c *storage.Client) error {
		c.AccessTokenFormat = storage.TokenFormatOpaque
		return nil
	})
	b := newBrowser(t, f.s)
	az := f.rp.authorize()
	tok := f.tokens(t, f.signIn(t, b, az, f.alice), az)
	if strings.Count(tok.AccessToken, ".") == 2 {
		t.Fatalf("opaque client got a JWT: %s", tok.AccessToken)
	}
	if info, err := f.rp.userinfo(tok); err != nil || info["uid"] != f.alice.ID {
		t.Fatalf("userinfo with an opaque token: %v %v", info, err)
	}
	if got := f.introspect(t, tok.AccessToken, "app", f.secret); got["active"] != true || got["uid"] != f.alice.ID {
		t.Fatalf("introspection of an opaque token: %v", got)
	}
	if s := f.revoke(t, tok.AccessToken, "", "app", f.secret); s != http.StatusOK {
		t.Fatalf("revoke opaque token: %d", s)
	}
	if got := f.introspect(t, tok.AccessToken, "app", f.secret); got["active"] != false {
		t.Fatalf("revoked opaque token: %v", got)
	}
}
