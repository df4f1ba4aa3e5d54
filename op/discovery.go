package op

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
)

var (
	scopesSupported = []string{"openid", "profile", "email", "phone", "address", "offline_access"}
	claimsSupported = append([]string{
		"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "azp", "at_hash", "c_hash", "sid",
		ClaimUID, ClaimRoles, ClaimAttributes,
	}, sortedNames(standardNames)...)
)

// discovery returns stile's discovery document. It is stile's own, not the
// library's, so it lists exactly what stile supports (the library's always
// advertises implicit, JWT bearer and device flows). It is computed once.
func discovery(issuer string) ([]byte, error) {
	doc := map[string]any{
		"issuer":                 issuer,
		"authorization_endpoint": issuer + "/authorize",
		"token_endpoint":         issuer + "/oauth/token",
		"userinfo_endpoint":      issuer + "/userinfo",
		"jwks_uri":               issuer + "/keys",
		"introspection_endpoint": issuer + "/oauth/introspect",
		"revocation_endpoint":    issuer + "/revoke",
		"end_session_endpoint":   issuer + "/end_session",
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"scopes_supported":                               scopesSupported,
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query", "fragment"},
		"grant_types_supported":                          grantTypesSupported,
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          []string{"RS256"},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post", "none"},
		"code_challenge_methods_supported":               []string{"S256"},
		"claims_supported":                               claimsSupported,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"claims_parameter_supported":                     true,
		"authorization_response_iss_parameter_supported": true,
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	return b, nil
}

func (p *Provider) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(p.discovery)
}

func sortedNames(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
