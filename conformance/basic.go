package conformance

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The Basic OP plan: 38 modules, code flow, client_secret_basic (module 32:
// client_secret_post).
func init() {
	b := func(name string, run func(*M)) { register(PlanBasic, name, run) }
	b("oidcc-server", func(m *M) { m.happy(m.browser(), m.request(m.cfg.Client), true) })
	b("oidcc-response-type-missing", responseTypeMissing)
	b("oidcc-idtoken-signature", idTokenSignature)
	b("oidcc-idtoken-unsigned", func(m *M) {
		m.skipUnless("id_token_signing_alg_values_supported", "none", "the provider does not offer unsigned ID tokens")
	})
	b("oidcc-userinfo-get", func(m *M) { m.userinfoBy("get", true) })
	b("oidcc-userinfo-post-header", func(m *M) { m.userinfoBy("post-header", true) })
	b("oidcc-userinfo-post-body", func(m *M) { m.userinfoBy("post-body", false) })
	b("oidcc-ensure-request-without-nonce-succeeds-for-code-flow", func(m *M) {
		m.happy(m.browser(), m.request(m.cfg.Client, "nonce", ""), true)
	})
	b("oidcc-scope-profile", func(m *M) { m.scopes("profile", "name") })
	b("oidcc-scope-email", func(m *M) { m.scopes("email", "email") })
	b("oidcc-scope-address", func(m *M) { m.scopes("address", "address") })
	b("oidcc-scope-phone", func(m *M) { m.scopes("phone", "phone_number") })
	b("oidcc-scope-all", func(m *M) { m.scopes("profile email address phone", "name", "email", "address", "phone_number") })
	b("oidcc-alternate-happy-flow", alternateHappyFlow)
	b("oidcc-display-page", func(m *M) { m.happy(m.browser(), m.request(m.cfg.Client, "display", "page"), true) })
	b("oidcc-display-popup", func(m *M) { m.happy(m.browser(), m.request(m.cfg.Client, "display", "popup"), true) })
	b("oidcc-prompt-login", promptLogin)
	b("oidcc-prompt-none-not-logged-in", promptNoneNotLoggedIn)
	b("oidcc-prompt-none-logged-in", promptNoneLoggedIn)
	b("oidcc-max-age-1", maxAge1)
	b("oidcc-max-age-10000", maxAge10000)
	b("oidcc-ensure-request-with-unknown-parameter-succeeds", func(m *M) {
		m.happy(m.browser(), m.request(m.cfg.Client, "extra", "foobar"), true)
	})
	b("oidcc-id-token-hint", idTokenHint)
	b("oidcc-login-hint", func(m *M) { m.happy(m.browser(), m.request(m.cfg.Client, "login_hint", "buffy@example.com"), true) })
	b("oidcc-ui-locales", func(m *M) { m.happy(m.browser(), m.request(m.cfg.Client, "ui_locales", "se"), true) })
	b("oidcc-claims-locales", func(m *M) { m.happy(m.browser(), m.request(m.cfg.Client, "claims_locales", "se"), true) })
	b("oidcc-ensure-request-with-acr-values-succeeds", acrValues)
	b("oidcc-codereuse", func(m *M) { codeReuse(m, 0) })
	b("oidcc-codereuse-30seconds", func(m *M) { codeReuse(m, 30*time.Second) })
	b("oidcc-ensure-registered-redirect-uri", registeredRedirectURI)
	b("oidcc-ensure-post-request-succeeds", postRequest)
	b("oidcc-server-client-secret-post", func(m *M) { m.happy(m.browser(), m.request(m.cfg.PostClient), true) })
	b("oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported", func(m *M) {
		m.skipUnless("request_object_signing_alg_values_supported", "none", "the provider does not offer unsigned request objects")
	})
	b("oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported", func(m *M) {
		m.skipUnless("request_object_signing_alg_values_supported", "none", "the provider does not offer unsigned request objects")
	})
	b("oidcc-claims-essential", claimsEssential)
	b("oidcc-ensure-request-object-with-redirect-uri", func(m *M) {
		m.skipUnless("request_object_signing_alg_values_supported", "none", "the provider does not offer unsigned request objects")
	})
	b("oidcc-refresh-token", refreshToken)
	b("oidcc-ensure-request-with-valid-pkce-succeeds", func(m *M) {
		m.happy(m.browser(), m.request(m.cfg.Client).withPKCE(), true)
	})
}

// skipUnless skips the module unless discovery lists value in list; these
// modules test features a provider need not offer.
func (m *M) skipUnless(list, value, reason string) {
	if !m.supports(list, value) {
		m.Skip(reason + " (" + value + " is not in " + list + ")")
	}
	m.Fatalf("the provider offers %s in %s; this suite does not test it yet", value, list)
}

// errorOrPage checks a request the provider must refuse: a redirect to the
// client with one of the errors, or an error page of its own.
func (m *M) errorOrPage(r response, a *authz, errs ...string) {
	if r.params == nil {
		m.check(r.page.Status >= 400 || r.page.Status == http.StatusOK, "refusal page with status %d", r.page.Status)
		return
	}
	e := r.params.Get("error")
	ok := false
	for _, want := range errs {
		ok = ok || e == want
	}
	m.check(ok, "error %q in the response, want one of %v", e, errs)
	m.check(r.params.Get("code") == "", "a code was issued for a request that must be refused")
	m.check(r.params.Get("state") == a.state, "state %q in the error response, want %q", r.params.Get("state"), a.state)
	m.checkIss(r.params)
}

func responseTypeMissing(m *M) {
	a := m.request(m.cfg.Client, "response_type", "")
	m.errorOrPage(m.authorize(m.browser(), a, false, false), a, "unsupported_response_type", "invalid_request")
}

func idTokenSignature(m *M) {
	t, _ := m.happy(m.browser(), m.request(m.cfg.Client), true)
	h, _ := m.verifyJWS(t.str("id_token"))
	m.check(h.Algorithm == "RS256", "ID token signed with %s, want RS256 (no alg requested)", h.Algorithm)
	m.check(h.KeyID != "", "ID token header has no kid")
}

func (m *M) userinfoBy(how string, required bool) {
	t, id := m.happy(m.browser(), m.request(m.cfg.Client), true)
	status, info := m.userinfo(t.str("access_token"), how)
	switch {
	case status != http.StatusOK && required:
		m.Errorf("userinfo by %s: status %d", how, status)
	case status != http.StatusOK:
		m.Warnf("userinfo with the token in the body: status %d (optional)", status)
	default:
		m.check(info["sub"] == id["sub"], "userinfo sub %v, ID token sub %v", info["sub"], id["sub"])
	}
}

// scopes runs a flow with the scopes and looks for the claims in userinfo:
// their absence is a warning, as officially.
func (m *M) scopes(scope string, claims ...string) {
	t, _ := m.happy(m.browser(), m.request(m.cfg.Client, "scope", "openid "+scope), true)
	_, info := m.userinfo(t.str("access_token"), "get")
	for _, c := range claims {
		if _, ok := info[c]; !ok {
			m.Warnf("userinfo lacks %s for scope %q", c, scope)
		}
	}
}

func alternateHappyFlow(m *M) {
	a := m.request(m.cfg.Client, "scope", "email openid profile")
	// Parameters in another order than usual: encode by hand, reversed.
	var parts []string
	for k, vs := range a.params {
		parts = append([]string{url.QueryEscape(k) + "=" + url.QueryEscape(vs[0])}, parts...)
	}
	b := m.browser()
	p, err := b.Get(m.endpoint("authorization_endpoint") + "?" + strings.Join(parts, "&"))
	if err != nil {
		m.Fatalf("authorization request: %v", err)
	}
	if p.Location() == nil {
		if p, err = m.cfg.Login.Login(b, p); err != nil {
			m.Fatalf("%v", err)
		}
	}
	loc := p.Location()
	if loc == nil {
		m.Fatalf("no redirect to the client")
	}
	t := m.exchange(a, m.codeFrom(response{params: loc.Query()}, a))
	m.idToken(t.str("id_token"), a)
}
