package main

import (
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage/storagetest"
)

// apiUser creates a user with a password through the API and enrols an
// authenticator for it with the CLI, as an operator would: a user the
// sign-in helpers can drive.
func (f *adminFixture) apiUser(t *testing.T, body map[string]any) (*user, map[string]any) {
	t.Helper()
	body["password"] = "correct horse battery " + body["username"].(string)
	made := f.create(t, body)
	var e struct {
		Secret string `json:"secret"`
	}
	jsonInto(t, f.s.stile(t, "user", "totp", body["username"].(string), "--json"), &e)
	u, err := f.s.db.GetUser(t.Context(), made["uid"].(string))
	if err != nil || e.Secret == "" {
		t.Fatalf("user %v: %v (secret %q)", made, err, e.Secret)
	}
	return &user{User: u, password: body["password"].(string), totpSecret: e.Secret}, made
}

// offlineAs signs u in to "app" with offline_access and returns the
// token response.
func (f *adminFixture) offlineAs(t *testing.T, u *user) map[string]any {
	t.Helper()
	f.nextStep() // a fresh TOTP step: each is accepted once
	az := f.rp.authorize("scope", "openid profile offline_access")
	code := f.signIn(t, newBrowser(t, f.s), az, u)
	resp, body := rawToken(t, f.s, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {appRedirect}, "code_verifier": {az.verifier}}, "app", f.secret)
	if resp.StatusCode != http.StatusOK || body["refresh_token"] == nil {
		t.Fatalf("code exchange with offline_access: %d %v", resp.StatusCode, body)
	}
	return body
}

// testAdminSignIn: a user created through the API signs in, and the roles
// and attributes the API set are in the ID token that go-oidc verifies;
// after a PATCH of both, the next sign-in's token carries the change.
func testAdminSignIn(t *testing.T, f *adminFixture) {
	hana, made := f.apiUser(t, map[string]any{"username": "hana", "email": "hana@example.com",
		"roles": []string{"editor", "author"}, "attributes": map[string]any{"site": "blog", "level": 2}})
	claims := f.verifyID(t, f.offlineAs(t, hana))
	if claims["sub"] != made["uid"] || claims[op.ClaimUID] != made["uid"] ||
		!reflect.DeepEqual(claims[op.ClaimRoles], []any{"editor", "author"}) ||
		!reflect.DeepEqual(claims[op.ClaimAttributes], map[string]any{"site": "blog", "level": float64(2)}) {
		t.Fatalf("ID token claims: %v", claims)
	}
	f.call(t, http.MethodPatch, userPath(made), map[string]any{"roles": []string{"admin"},
		"attributes": map[string]any{"level": 3, "site": nil}}).want(t, http.StatusOK)
	claims = f.verifyID(t, f.offlineAs(t, hana))
	if !reflect.DeepEqual(claims[op.ClaimRoles], []any{"admin"}) ||
		!reflect.DeepEqual(claims[op.ClaimAttributes], map[string]any{"level": float64(3)}) {
		t.Fatalf("ID token claims after the PATCH: %v", claims)
	}
}

// testAdminRevocation: disabling a user, setting their password,
// resetting their second factor, changing their roles and ending their
// sessions each revoke their refresh tokens: the refresh that worked
// before the change fails after it.
func testAdminRevocation(t *testing.T, f *adminFixture) {
	ivan, made := f.apiUser(t, map[string]any{"username": "ivan", "roles": []string{"r"}})
	for _, change := range []struct {
		name   string
		do     func()
		status int
	}{
		{"disable", func() { f.call(t, http.MethodPost, userPath(made, "/disable"), nil).want(t, http.StatusOK) }, 0},
		{"set the password", func() {
			ivan.password = "a brand new password"
			f.call(t, http.MethodPut, userPath(made, "/password"), map[string]any{"password": ivan.password}).want(t, http.StatusNoContent)
		}, 0},
		{"change the roles", func() {
			f.call(t, http.MethodPatch, userPath(made), map[string]any{"roles": []string{"r", "s"}}).want(t, http.StatusOK)
		}, 0},
		{"end the sessions", func() { f.call(t, http.MethodDelete, userPath(made, "/sessions"), nil).want(t, http.StatusNoContent) }, 0},
		{"reset the second factor", func() {
			f.call(t, http.MethodDelete, userPath(made, "/factors/totp"), nil).want(t, http.StatusNoContent)
		}, 0},
	} {
		body := f.offlineAs(t, ivan)
		rt := body["refresh_token"].(string)
		status, next := f.refresh(t, rt, "app", f.secret)
		if status != http.StatusOK {
			t.Fatalf("before %s: refresh %d %v", change.name, status, next)
		}
		change.do()
		if status, _ := f.refresh(t, next["refresh_token"].(string), "app", f.secret); status == http.StatusOK {
			t.Errorf("after %s: the refresh token still works", change.name)
		}
		if f.userinfoStatus(t, next["access_token"].(string)) == http.StatusOK && change.name != "change the roles" {
			t.Errorf("after %s: the access token still works at userinfo", change.name)
		}
		if change.name == "disable" {
			f.call(t, http.MethodPost, userPath(made, "/enable"), nil).want(t, http.StatusOK)
		}
	}
	// The factor is gone: the user has none left to sign in with.
	fs := f.call(t, http.MethodGet, userPath(made, "/factors"), nil).want(t, http.StatusOK).object(t)
	if fs["totp"] != false || slices.Contains(anyStrings(fs["methods"]), "TOTP") {
		t.Errorf("factors after the reset: %v", fs)
	}
}

// testAdminSessionsFactors: a signed-in user's sessions and grants are
// listed without any hash or token; the factors show TOTP; an enrolment
// link is issued; an unknown factor kind is refused beside the known one.
func testAdminSessionsFactors(t *testing.T, f *adminFixture) {
	jo, made := f.apiUser(t, map[string]any{"username": "jo", "email": "jo@example.com"})
	tokens := f.offlineAs(t, jo)
	r := f.call(t, http.MethodGet, userPath(made, "/sessions"), nil).want(t, http.StatusOK)
	var got struct {
		Sessions []map[string]any `json:"sessions"`
		Grants   []map[string]any `json:"grants"`
	}
	r.decode(t, &got)
	if len(got.Sessions) != 1 || len(got.Grants) != 1 || got.Grants[0]["client_id"] != "app" {
		t.Fatalf("sessions: %s", r.body)
	}
	for _, secret := range []string{tokens["refresh_token"].(string), tokens["access_token"].(string)} {
		if strings.Contains(string(r.body), secret) {
			t.Errorf("the session list shows a token")
		}
	}
	fs := f.call(t, http.MethodGet, userPath(made, "/factors"), nil).want(t, http.StatusOK).object(t)
	if fs["totp"] != true || !slices.Contains(anyStrings(fs["methods"]), "TOTP") {
		t.Errorf("factors: %v", fs)
	}
	link := f.call(t, http.MethodPost, userPath(made, "/enrollment-link"), map[string]any{"ttl_seconds": 3600}).want(t, http.StatusOK).object(t)
	if link["url"] == nil || link["expires_at"] == nil {
		t.Errorf("enrolment link: %v", link)
	}
	f.call(t, http.MethodPost, userPath(made, "/enrollment-link"), nil).want(t, http.StatusOK) // no body: the default lifetime
	f.call(t, http.MethodPost, userPath(made, "/enrollment-link"), map[string]any{"ttl_seconds": -1}).problem(t, http.StatusBadRequest)
	f.call(t, http.MethodDelete, userPath(made, "/factors/sms"), nil).problem(t, http.StatusBadRequest)
	f.call(t, http.MethodDelete, userPath(made, "/factors/all"), nil).want(t, http.StatusNoContent)
	r = f.call(t, http.MethodGet, userPath(made, "/sessions"), nil).want(t, http.StatusOK)
	r.decode(t, &got)
	if len(got.Sessions) != 0 || len(got.Grants) != 0 {
		t.Errorf("sessions after a factor reset: %s", r.body)
	}
	f.call(t, http.MethodGet, "/api/v1/users/00000000-0000-0000-0000-000000000000/factors", nil).problem(t, http.StatusNotFound)
}

// TestAdminNotifies: a password the API sets is announced to the user by
// email, as self-service changes are; a user without an address gets
// nothing, and nothing is sent before the change.
func TestAdminNotifies(t *testing.T) {
	mb, gw := newMailbox(t), newSMSGateway(t)
	f := newAdminFixture(t, storagetest.Dialects()[0].URL(t), delivery(t, mb, gw))
	u := f.create(t, map[string]any{"username": "pat", "email": "pat@example.com", "password": "the first password"})
	if n := mb.count("pat@example.com"); n != 0 {
		t.Fatalf("%d emails before any change", n)
	}
	f.call(t, http.MethodPut, userPath(u, "/password"), map[string]any{"password": "the second password"}).want(t, http.StatusNoContent)
	if n := mb.count("pat@example.com"); n != 1 {
		t.Fatalf("%d emails after the API set the password, want 1", n)
	}
	if strings.Contains(mb.sent("pat@example.com")[0], "the second password") {
		t.Fatal("the notice carries the password")
	}
}
