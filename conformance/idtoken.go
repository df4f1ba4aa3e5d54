package conformance

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// jwks fetches and checks the provider's key set: every key has a kid, and
// the kids are distinct (OpenID Connect Core §10.1).
func (m *M) jwks() jose.JSONWebKeySet {
	resp, err := m.client().Get(m.endpoint("jwks_uri"))
	if err != nil {
		m.Fatalf("JWKS: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		m.Fatalf("JWKS: status %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		m.Fatalf("JWKS is not a valid key set: %v", err)
	}
	if len(set.Keys) == 0 {
		m.Fatalf("JWKS has no keys")
	}
	return set
}

func (m *M) checkJWKS() {
	seen := map[string]bool{}
	for _, k := range m.jwks().Keys {
		m.check(k.KeyID != "", "a JWKS key has no kid")
		m.check(!seen[k.KeyID], "two JWKS keys share the kid %q", k.KeyID)
		m.check(k.Valid(), "JWKS key %q is not valid", k.KeyID)
		seen[k.KeyID] = true
	}
}

var signingAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// verifyJWS checks a JWS against the JWKS and returns its header and claims.
func (m *M) verifyJWS(raw string) (jose.Header, map[string]any) {
	jws, err := jose.ParseSigned(raw, signingAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		m.Fatalf("not a signed JWT (%v)", err)
	}
	h := jws.Signatures[0].Header
	set := m.jwks()
	keys := set.Key(h.KeyID)
	if len(keys) == 0 {
		m.Fatalf("no JWKS key with kid %q", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		m.Fatalf("signature does not verify against the JWKS: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		m.Fatalf("payload is not JSON: %v", err)
	}
	return h, claims
}

// idToken verifies an ID token and makes the checks of every happy flow:
// iss, aud, azp, exp, iat, sub, nonce, auth_time, acr (OpenID Connect Core
// §3.1.3.7).
func (m *M) idToken(raw string, a *authz) map[string]any {
	_, c := m.verifyJWS(raw)
	now := m.cfg.Now()
	m.check(c["iss"] == m.cfg.Issuer, "ID token iss %v, want %s", c["iss"], m.cfg.Issuer)
	aud := audiences(c["aud"])
	m.check(slices.Contains(aud, a.client.ID), "ID token aud %v lacks the client_id %s", aud, a.client.ID)
	if len(aud) > 1 {
		m.check(c["azp"] == a.client.ID, "ID token with several audiences has azp %v, want %s", c["azp"], a.client.ID)
	}
	sub, _ := c["sub"].(string)
	m.check(sub != "", "ID token has no sub")
	exp, iat := number(c["exp"]), number(c["iat"])
	m.check(exp > float64(now.Unix()), "ID token exp %v is not in the future", c["exp"])
	m.check(iat != 0 && iat <= float64(now.Add(5*time.Minute).Unix()), "ID token iat %v is missing or in the future", c["iat"])
	m.check(iat >= float64(now.Add(-5*time.Minute).Unix()), "ID token iat %v is more than 5 minutes old", c["iat"])
	if a.params.Get("nonce") != "" {
		m.check(c["nonce"] == a.params.Get("nonce"), "ID token nonce %v, want %s", c["nonce"], a.params.Get("nonce"))
	}
	if at, ok := c["auth_time"]; ok {
		t := number(at)
		m.check(t > 0 && t <= float64(now.Add(5*time.Minute).Unix()), "ID token auth_time %v is not a sane time", at)
	}
	if acr, ok := c["acr"]; ok {
		s, _ := acr.(string)
		m.check(s != "", "ID token acr is present but empty")
	}
	if _, ok := c["name"]; ok && a.params.Get("scope") != "" {
		m.Warnf("the ID token carries name although an access token was issued")
	}
	return c
}

func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		out := make([]string, 0, len(a))
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func number(v any) float64 {
	f, _ := v.(float64)
	return f
}
