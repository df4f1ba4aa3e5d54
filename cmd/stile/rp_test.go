package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// relyingParty is an independent OpenID client: golang.org/x/oauth2 for the
// code exchange with PKCE and github.com/coreos/go-oidc for discovery and
// token verification against stile's published JWKS.
type relyingParty struct {
	t        *testing.T
	provider *oidc.Provider
	config   oauth2.Config
}

func newRP(t *testing.T, s *server, clientID, secret, redirect string) *relyingParty {
	t.Helper()
	p, err := oidc.NewProvider(context.Background(), s.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &relyingParty{t: t, provider: p, config: oauth2.Config{
		ClientID: clientID, ClientSecret: secret, RedirectURL: redirect, Endpoint: p.Endpoint(),
		Scopes: []string{oidc.ScopeOpenID, "profile", "email"},
	}}
}

// authorization is one authorization request and its secrets.
type authorization struct {
	url, state, nonce, verifier string
}

// authorize builds an authorization request with state, nonce and S256
// PKCE; extra parameters are added or, with an empty value, removed.
func (r *relyingParty) authorize(extra ...string) *authorization {
	a := &authorization{state: rand.Text(), nonce: rand.Text(), verifier: oauth2.GenerateVerifier()}
	u, _ := url.Parse(r.config.AuthCodeURL(a.state, oidc.Nonce(a.nonce), oauth2.S256ChallengeOption(a.verifier)))
	q := u.Query()
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			q.Del(extra[i])
		} else {
			q.Set(extra[i], extra[i+1])
		}
	}
	u.RawQuery = q.Encode()
	a.url = u.String()
	return a
}

// exchange redeems a code with a PKCE verifier ("" for none).
func (r *relyingParty) exchange(code, verifier string) (*oauth2.Token, error) {
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	return r.config.Exchange(context.Background(), code, opts...)
}

// idClaims verifies the ID token (signature against the JWKS, iss, aud,
// exp) and returns its claims.
func (r *relyingParty) idClaims(tok *oauth2.Token, nonce string) map[string]any {
	r.t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.provider.Verifier(&oidc.Config{ClientID: r.config.ClientID}).Verify(context.Background(), raw)
	if err != nil {
		r.t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != nonce {
		r.t.Fatalf("nonce %q, want %q", idt.Nonce, nonce)
	}
	var claims map[string]any
	idt.Claims(&claims)
	return claims
}

// accessClaims verifies a JWT access token as a resource server would:
// signature against the JWKS, iss, aud (audience), exp.
func (r *relyingParty) accessClaims(tok *oauth2.Token, audience string) map[string]any {
	r.t.Helper()
	at, err := r.provider.Verifier(&oidc.Config{ClientID: audience}).Verify(context.Background(), tok.AccessToken)
	if err != nil {
		r.t.Fatalf("verify access token: %v", err)
	}
	var claims map[string]any
	at.Claims(&claims)
	return claims
}

func (r *relyingParty) userinfo(tok *oauth2.Token) (map[string]any, error) {
	info, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	info.Claims(&claims)
	return claims, nil
}

// tokenError is the error an exchange failed with, e.g. "invalid_grant".
func tokenError(t *testing.T, err error) string {
	t.Helper()
	re, ok := err.(*oauth2.RetrieveError)
	if !ok {
		t.Fatalf("exchange error %v (%T), want an OAuth error response", err, err)
	}
	return re.ErrorCode
}

// rawToken posts to the token endpoint directly, for what oauth2 hides:
// the response headers.
func rawToken(t *testing.T, s *server, form url.Values, clientID, secret string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp, body
}
