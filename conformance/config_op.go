package conformance

import (
	"net/url"
	"strings"
)

// The Config OP plan: one module, the discovery document.
func init() {
	register(PlanConfig, "oidcc-discovery-endpoint-verification", func(m *M) { m.verifyDiscovery() })
}

// verifyDiscovery checks the discovery document as the official module
// does (OpenID Connect Discovery 1.0 §3, RFC 8414).
func (m *M) verifyDiscovery() {
	resp, err := m.client().Get(m.cfg.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		m.Fatalf("discovery: %v", err)
	}
	resp.Body.Close()
	m.check(strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"), "discovery Content-Type %q", resp.Header.Get("Content-Type"))
	iss, _ := m.disc["issuer"].(string)
	m.check(iss == m.cfg.Issuer, "issuer %q, want the discovery URL's %q", iss, m.cfg.Issuer)
	if u, err := url.Parse(iss); err != nil || !u.IsAbs() || u.RawQuery != "" || u.Fragment != "" {
		m.Errorf("issuer %q is not a valid issuer URL", iss)
	}
	m.check(m.supports("response_types_supported", "code") || m.supports("response_types_supported", "id_token"),
		"response_types_supported has no OpenID response type")
	m.check(m.supports("subject_types_supported", "public") || m.supports("subject_types_supported", "pairwise"),
		"subject_types_supported has neither public nor pairwise")
	m.check(m.supports("id_token_signing_alg_values_supported", "RS256"), "id_token_signing_alg_values_supported lacks RS256")
	for _, name := range []string{"authorization_endpoint", "token_endpoint", "jwks_uri"} {
		m.endpoint(name)
	}
	for _, name := range []string{"userinfo_endpoint", "claims_supported"} {
		if _, ok := m.disc[name]; !ok {
			m.Warnf("discovery has no %s (recommended)", name)
		}
	}
	m.checkJWKS()
	m.checkLists()
	m.checkHTTPS()
}

// checkLists: the array-valued metadata are arrays, non-empty where they
// must be, with openid among the scopes.
func (m *M) checkLists() {
	for _, name := range []string{"grant_types_supported", "scopes_supported", "code_challenge_methods_supported",
		"response_modes_supported", "claims_supported", "token_endpoint_auth_methods_supported"} {
		v, ok := m.disc[name]
		if !ok {
			continue
		}
		list, isList := v.([]any)
		m.check(isList, "%s is not an array", name)
		m.check(!isList || len(list) > 0 || name != "grant_types_supported", "%s is empty", name)
	}
	if _, ok := m.disc["scopes_supported"]; ok {
		m.check(m.supports("scopes_supported", "openid"), "scopes_supported lacks openid")
	}
	if _, ok := m.disc["userinfo_signing_alg_values_supported"]; ok {
		m.check(!m.supports("userinfo_signing_alg_values_supported", ""), "userinfo_signing_alg_values_supported has an empty value")
	}
}

// checkHTTPS: every endpoint is https.
func (m *M) checkHTTPS() {
	for name, v := range m.disc {
		s, ok := v.(string)
		if !ok || !(strings.HasSuffix(name, "_endpoint") || name == "jwks_uri" || name == "issuer") {
			continue
		}
		m.check(strings.HasPrefix(s, "https://"), "%s %q is not https", name, s)
	}
}
