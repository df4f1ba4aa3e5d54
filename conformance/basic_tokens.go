package conformance

import (
	"net/http"
	"net/url"
	"strings"
)

// registeredRedirectURI: an unregistered redirect_uri must get an error
// page; redirecting to it is a failure.
func registeredRedirectURI(m *M) {
	a := m.request(m.cfg.Client, "redirect_uri", m.cfg.Client.RedirectURI+"/not-registered")
	b := m.browser()
	b.NoFollow = true
	p, err := b.Get(m.endpoint("authorization_endpoint") + "?" + a.params.Encode())
	if err != nil {
		m.Fatalf("authorization request: %v", err)
	}
	if loc := p.Location(); loc != nil && !strings.HasPrefix(loc.String(), m.cfg.Issuer) {
		m.Fatalf("the provider redirected to %s for an unregistered redirect_uri", loc.Redacted())
	}
	m.check(p.Status >= 400, "unregistered redirect_uri: status %d, want an error page", p.Status)
}

func postRequest(m *M) {
	b := m.browser()
	a := m.request(m.cfg.Client)
	r := m.authorize(b, a, true, true)
	t := m.exchange(a, m.codeFrom(r, a))
	m.idToken(t.str("id_token"), a)
}

func claimsEssential(m *M) {
	a := m.request(m.cfg.Client, "claims", `{"userinfo":{"name":{"essential":true}}}`)
	t, _ := m.happy(m.browser(), a, true)
	_, info := m.userinfo(t.str("access_token"), "get")
	if _, ok := info["name"]; !ok {
		m.Warnf("userinfo lacks name, requested as essential")
	}
}

// refreshToken: a refresh token, if issued, works for its own client only,
// returns a new access token (and refresh token) uncacheable, and a new ID
// token, if any, names the same user and sign-in.
func refreshToken(m *M) {
	scope := "openid"
	extra := []string{}
	if m.supports("scopes_supported", "offline_access") {
		scope += " offline_access"
		extra = append(extra, "prompt", "consent")
	}
	if !m.supports("grant_types_supported", "refresh_token") {
		m.Warnf("discovery does not list refresh_token in grant_types_supported")
	}
	t, first := m.happy(m.browser(), m.request(m.cfg.Client, append(extra, "scope", scope)...), true)
	rt := t.str("refresh_token")
	if rt == "" {
		m.Skip("the provider issued no refresh token")
	}
	m.check(strings.Trim(rt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=") == "",
		"the refresh token has characters outside the allowed set")
	m.checkEntropy("refresh token", rt, 128, 96)

	r := m.token(m.cfg.Client, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if r.status != http.StatusOK {
		m.Fatalf("refresh: status %d, %v", r.status, r.body)
	}
	m.check(strings.Contains(r.header.Get("Cache-Control"), "no-store"), "refresh response without Cache-Control: no-store")
	m.check(strings.EqualFold(r.str("token_type"), "Bearer"), "refresh token_type %q", r.str("token_type"))
	m.checkEntropy("access token", r.str("access_token"), 96, 96)
	if id := r.str("id_token"); id != "" {
		second := m.idToken(id, &authz{client: m.cfg.Client, params: url.Values{}})
		for _, c := range []string{"iss", "sub", "azp", "auth_time"} {
			m.check(second[c] == first[c], "refreshed ID token %s = %v, was %v", c, second[c], first[c])
		}
		m.check(strings.Join(audiences(second["aud"]), " ") == strings.Join(audiences(first["aud"]), " "),
			"refreshed ID token aud %v, was %v", second["aud"], first["aud"])
		m.check(number(second["iat"]) >= number(first["iat"]), "refreshed ID token iat %v is older than %v", second["iat"], first["iat"])
	}
	if status, _ := m.userinfo(r.str("access_token"), "get"); status != http.StatusOK {
		m.Errorf("the refreshed access token fails at userinfo: status %d", status)
	}

	// client2's refresh token, presented by client1, must be refused.
	t2, _ := m.happy(m.browser(), m.request(m.cfg.Client2, append(extra, "scope", scope)...), true)
	if rt2 := t2.str("refresh_token"); rt2 != "" {
		x := m.token(m.cfg.Client, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}})
		m.check(x.status >= 400 && x.status < 500, "client2's refresh token used by client1: status %d", x.status)
		m.check(x.str("error") == "invalid_grant", "client2's refresh token used by client1: error %q, want invalid_grant", x.str("error"))
	}
}
