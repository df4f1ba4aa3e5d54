package main

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
)

// TestSignupAPI: sign-up on the JSON login API, for a client with its own
// login page: the loginToken and a registered Origin are required, the
// sign-up belongs to the API (stile's pages refuse it, even in the bound
// browser), and the redirectURI gives the bound browser its session and
// the client its code, with the defaults in the tokens.
func TestSignupAPI(t *testing.T) {
	runHeadless(t, []hscenario{{"TOTP", testSignupAPI}})
}

func testSignupAPI(t *testing.T, h *hfixture) {
	if _, err := h.s.db.UpdateClient(t.Context(), "custom", func(c *storage.Client) error {
		c.Signup, c.SignupRoles, c.SignupAttributes = true, storage.Strings{"member"}, storage.Attributes{"plan": "free"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, h.s)
	arID, az := h.handoff(t, b)
	body := map[string]string{"authRequestID": arID, "loginToken": h.loginToken(arID), "username": "nico", "email": "nico@example.com",
		"password": "nico's long passphrase", "confirm": "nico's long passphrase"}
	without := maps.Clone(body)
	delete(without, "loginToken")
	expect(t, "without the loginToken", h.call(t, "/login/api/signup", customOrigin, without), http.StatusBadRequest, "invalid_request")
	expect(t, "from another origin", h.call(t, "/login/api/signup", "https://evil.example", body), http.StatusForbidden, "origin_not_allowed")
	if h.mail.count("nico@example.com") != 0 {
		t.Fatal("a refused call sent mail")
	}
	r := h.call(t, "/login/api/signup", customOrigin, body)
	expect(t, "sign-up", r, http.StatusOK, "")
	id := r.str("signupID")
	if r.str("step") != login.SignupStepCode || id == "" || !strings.Contains(r.str("message"), "nico@example.com") {
		t.Fatalf("sign-up: %v", r.body)
	}
	code := codeIn(t, h.mail.last(t, "nico@example.com", "create your account"))
	// The pages refuse this door's sign-up, even in the bound browser.
	if p := b.post(h.s.URL+"/login/signup/code", url.Values{"signupID": {id}, "otp": {code}}); p.status != http.StatusForbidden {
		t.Fatalf("the API's sign-up on the pages: %d", p.status)
	}
	wrong := h.call(t, "/login/api/signup/verify", customOrigin, map[string]string{"signupID": id, "otp": wrongCode(code)})
	expect(t, "a wrong code", wrong, http.StatusForbidden, "invalid_otp")
	v := h.call(t, "/login/api/signup/verify", customOrigin, map[string]string{"signupID": id, "otp": code})
	expect(t, "the code", v, http.StatusOK, "")
	if v.str("step") != login.SignupStepEnroll || v.str("secret") == "" || !strings.HasPrefix(v.str("qr"), "data:image/png;base64,") {
		t.Fatalf("after the code: %v", v.body)
	}
	if _, err := h.s.db.GetUserByUsername(t.Context(), "nico"); err == nil {
		t.Fatal("an account exists before its authenticator")
	}
	done := h.call(t, "/login/api/signup/totp", customOrigin, map[string]string{"signupID": id, "otp": h.totpOf(t, v.str("secret"))})
	tok := h.finishAPI(t, b, az, done)
	claims := h.custom.idClaims(tok, az.nonce)
	u, err := h.s.db.GetUserByUsername(t.Context(), "nico")
	if err != nil || claims["uid"] != u.ID || !slices.Equal(toStrings(claims["roles"]), []string{"member"}) ||
		strings.Join(toStrings(claims["amr"]), " ") != "pwd otp mfa" {
		t.Fatalf("nico: %v, claims %v", err, claims)
	}
}
