// Command cms is a CMS-style backend (think headless Drupal or Strapi) that
// protects its API with stile's access tokens, in one of two ways:
//
//   - jwks: offline, checking each JWT's signature against stile's JWKS and
//     its iss, aud and exp (github.com/coreos/go-oidc). Fast, but a revoked
//     token stays valid until it expires.
//   - introspect: online, asking stile's introspection endpoint (RFC 7662)
//     about each token, as a confidential client named in the token's
//     audience. Revocation takes effect at once.
//
// It serves GET /api/me, answering the caller's uid, roles and attributes,
// or 401 with WWW-Authenticate. Configuration comes from the environment:
// CMS_ISSUER, CMS_AUDIENCE, CMS_MODE (jwks|introspect), CMS_CLIENT_ID and
// CMS_CLIENT_SECRET (introspect), CMS_LISTEN. It prints its address.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Caller is what the API knows of whoever holds the token.
type Caller struct {
	UID        string         `json:"uid"`
	Roles      []string       `json:"roles"`
	Attributes map[string]any `json:"attributes"`
}

// checker turns a bearer token into its caller, or an error.
type checker func(ctx context.Context, token string) (*Caller, error)

func main() {
	issuer, audience, mode := os.Getenv("CMS_ISSUER"), os.Getenv("CMS_AUDIENCE"), os.Getenv("CMS_MODE")
	var check checker
	switch mode {
	case "jwks":
		provider, err := oidc.NewProvider(context.Background(), issuer)
		if err != nil {
			log.Fatalf("discovery: %v", err)
		}
		check = viaJWKS(provider.Verifier(&oidc.Config{ClientID: audience}))
	case "introspect":
		check = viaIntrospection(issuer+"/oauth/introspect", os.Getenv("CMS_CLIENT_ID"), os.Getenv("CMS_CLIENT_SECRET"))
	default:
		log.Fatalf("CMS_MODE must be jwks or introspect, not %q", mode)
	}
	ln, err := net.Listen("tcp", envOr("CMS_LISTEN", "127.0.0.1:0"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", ln.Addr())
	http.HandleFunc("GET /api/me", func(w http.ResponseWriter, r *http.Request) { me(w, r, check) })
	log.Fatal(http.Serve(ln, nil))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func me(w http.ResponseWriter, r *http.Request, check checker) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cms"`)
		http.Error(w, "no bearer token", http.StatusUnauthorized)
		return
	}
	caller, err := check(r.Context(), token)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cms", error="invalid_token"`)
		http.Error(w, "invalid token: "+err.Error(), http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(caller)
}

// viaJWKS checks signature, iss, aud and exp offline.
func viaJWKS(v *oidc.IDTokenVerifier) checker {
	return func(ctx context.Context, token string) (*Caller, error) {
		t, err := v.Verify(ctx, token)
		if err != nil {
			return nil, err
		}
		var c Caller
		if err := t.Claims(&c); err != nil {
			return nil, err
		}
		return &c, nil
	}
}

// viaIntrospection asks stile whether the token is active.
func viaIntrospection(endpoint, clientID, secret string) checker {
	client := &http.Client{Timeout: 10 * time.Second}
	return func(ctx context.Context, token string) (*Caller, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var body struct {
			Active bool `json:"active"`
			Caller
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("introspection answered %d", resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return nil, err
		}
		if !body.Active {
			return nil, errors.New("not active")
		}
		return &body.Caller, nil
	}
}
