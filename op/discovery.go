package op

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
)

var (
	scopesSupported = []string{"openid", "profile", "email", "phone", "address", "offline_access"}
	claimsSupported = append([]string{
		"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "at_hash", "c_hash", "sid",
		ClaimUID, ClaimRoles, ClaimAttributes,
	}, sortedNames(standardNames)...)
)

// discovery returns stile's discovery document. It is stile's own, not the
// library's, so it lists exactly what stile supports (the library's always
// advertises implicit, JWT bearer and device flows). It is computed once per
// set of signing algorithms (algs: those of the active keys).
func discovery(issuer string, algs []string) ([]byte, error) {
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
		"id_token_signing_alg_values_supported":          algs,
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post", "none"},
		"code_challenge_methods_supported":               []string{"S256"},
		"claims_supported":                               claimsSupported,
		"acr_values_supported":                           acrValuesSupported,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"claims_parameter_supported":                     true,
		"authorization_response_iss_parameter_supported": true,
		// draft-ietf-oauth-first-party-apps-04 §8 (the login serves it).
		"authorization_challenge_endpoint": issuer + "/oauth/authorize-challenge",
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	return b, nil
}

// discoveryDoc is the document for the signing algorithms in force, rebuilt
// only when they change (a key of a new algorithm starts signing, or the
// old default's retires).
type discoveryDoc struct {
	issuer string
	algs   func(context.Context) ([]string, error)

	mu   sync.Mutex
	key  string
	body []byte
}

func (d *discoveryDoc) get(ctx context.Context) ([]byte, error) {
	algs, err := d.algs(ctx)
	if err != nil {
		return nil, err
	}
	key := strings.Join(algs, " ")
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.body != nil && d.key == key {
		return d.body, nil
	}
	body, err := discovery(d.issuer, algs)
	if err != nil {
		return nil, err
	}
	d.key, d.body = key, body
	return body, nil
}

func (p *Provider) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	doc, err := p.discovery.get(r.Context())
	if err != nil {
		p.log.ErrorContext(r.Context(), "discovery document", "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(doc)
}

func sortedNames(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
