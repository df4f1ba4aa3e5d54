package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestKeyRotation: the next key is published before it signs; once it
// signs, a token signed by the old key still verifies until the old key's
// tokens have all expired, and then the old key leaves the JWKS.
func TestKeyRotation(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t))
	oldTok := f.accessToken(t)
	oldKid := kidOf(t, oldTok)

	m := keys.NewManager(f.s.db, f.s.sealer, f.s.clock.Now, 10*time.Minute)
	next, err := m.Rotate(t.Context(), "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.s.clock.Advance(2 * time.Minute) // past the provider's key cache
	if kids := f.jwksKids(t); !kids[next.ID] || !kids[oldKid] {
		t.Fatalf("JWKS %v: want the next key %s published beside the active %s", kids, next.ID, oldKid)
	}
	if kid := kidOf(t, f.accessToken(t)); kid != oldKid {
		t.Fatalf("the next key signed (%s) before its time", kid)
	}

	f.s.clock.Advance(time.Hour)
	f.s.maintain(t.Context()) // the server's minute tick promotes it
	newTok := f.accessToken(t)
	if kid := kidOf(t, newTok); kid != next.ID {
		t.Fatalf("after activation the token is signed by %s, want %s", kid, next.ID)
	}
	// A backend verifying against the JWKS accepts both tokens.
	for name, tok := range map[string]string{"old key": oldTok, "new key": newTok} {
		if _, err := f.rp.provider.Verifier(&oidc.Config{ClientID: apiAudience, SkipExpiryCheck: true}).Verify(t.Context(), tok); err != nil {
			t.Errorf("token signed by the %s: %v", name, err)
		}
	}
	// Once every token the old key signed has expired, it is withdrawn.
	f.s.clock.Advance(16 * time.Minute)
	f.s.maintain(t.Context())
	f.s.clock.Advance(2 * time.Minute)
	if kids := f.jwksKids(t); kids[oldKid] || !kids[next.ID] {
		t.Fatalf("JWKS after the old key's tokens expired: %v", kids)
	}
}

// accessToken signs alice in, in a fresh browser, and returns the access token.
func (f *fixture) accessToken(t *testing.T) string {
	t.Helper()
	f.nextStep()
	az := f.rp.authorize()
	return f.tokens(t, f.signIn(t, newBrowser(t, f.s), az, f.alice), az).AccessToken
}

func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	var h struct{ Kid string }
	if err := json.Unmarshal(decodeSegment(t, strings.Split(jwt, ".")[0]), &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

func (f *fixture) jwksKids(t *testing.T) map[string]bool {
	t.Helper()
	resp, err := http.Get(f.s.URL + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kid, Use, Alg string }
	}
	json.NewDecoder(resp.Body).Decode(&set)
	out := map[string]bool{}
	for _, k := range set.Keys {
		if k.Kid == "" || k.Use != "sig" || !slices.Contains(storage.SigningAlgorithms, k.Alg) {
			t.Errorf("JWKS key without kid, use or alg: %+v", k)
		}
		out[k.Kid] = true
	}
	return out
}

// TestConcurrentRedemption: many clients racing to redeem one code, or to
// rotate one refresh token (grace window off), over HTTP on PostgreSQL —
// exactly one wins each race.
func TestConcurrentRedemption(t *testing.T) {
	dbURL := storagetest.Postgres(t)
	s := startServer(t, dbURL, func(c *appConfig) {
		c.Lifetimes = op.DefaultLifetimes
		c.Lifetimes.RefreshGrace = 0
	})
	f := &fixture{s: s}
	f.secret = s.addClient(t, &storage.Client{ID: "app", Type: storage.ClientWeb, FirstParty: true, RequirePKCE: true,
		RedirectURIs: storage.Strings{appRedirect}, GrantTypes: storage.Strings{storage.GrantAuthorizationCode, storage.GrantRefreshToken}})
	f.alice = s.addUser(t, "alice", true)
	f.rp = newRP(t, s, "app", f.secret, appRedirect)

	az := f.rp.authorize("scope", "openid offline_access")
	code := f.signIn(t, newBrowser(t, s), az, f.alice)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}, "code_verifier": {az.verifier}}
	// The losers are replays: they revoke the grant, and the winner, if its
	// answer was not out before a replay, is refused too (tokenrules_test.go).
	if wins, _ := race(t, s, form, f.secret); wins > 1 {
		t.Fatalf("%d of 8 redemptions of one code succeeded, want at most 1", wins)
	}
	f.s.clock.Advance(30 * time.Second) // the next TOTP step
	az = f.rp.authorize("scope", "openid offline_access")
	_, once := rawToken(t, s, url.Values{"grant_type": {"authorization_code"}, "code": {f.signIn(t, newBrowser(t, s), az, f.alice)},
		"redirect_uri": {appRedirect}, "code_verifier": {az.verifier}}, "app", f.secret)
	rt := once["refresh_token"].(string)
	wins, _ := race(t, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, f.secret)
	if wins != 1 {
		t.Fatalf("%d of 8 rotations of one refresh token succeeded, want exactly 1", wins)
	}
}

// race posts the same token request from 8 goroutines at once and returns
// how many succeeded, with the successful bodies.
func race(t *testing.T, s *server, form url.Values, secret string) (int, []map[string]any) {
	var mu sync.Mutex
	var ok []map[string]any
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			<-start
			resp, body := rawToken(t, s, form, "app", secret)
			if resp.StatusCode == http.StatusOK {
				mu.Lock()
				ok = append(ok, body)
				mu.Unlock()
			} else if body["error"] != "invalid_grant" {
				t.Errorf("a losing request got %d %v, want invalid_grant", resp.StatusCode, body)
			}
		})
	}
	close(start)
	wg.Wait()
	return len(ok), ok
}

// TestEnrollmentLink: the operator hands out a link; on it the user proves
// the password, sees a new secret once, confirms it with a code, and then
// signs in with it. The link works once, in one browser.
func TestEnrollmentLink(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL(t))
			erin := f.s.addUser(t, "erin", false)
			link, _, err := account.NewEnrollmentLink(context.Background(), f.s.db, f.s.URL, erin.ID, time.Hour, f.s.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			b := newBrowser(t, f.s)
			p := b.get(link)
			if p.status != http.StatusOK || strings.Contains(p.body, "otpauth") || strings.Contains(p.body, "data:image") {
				t.Fatalf("link before the password: %d\n%s", p.status, p.body)
			}
			if r := b.submit(p, map[string]string{"password": "wrong"}); r.status != http.StatusUnauthorized || strings.Contains(r.body, "data:image") {
				t.Fatalf("wrong password on the link: %d", r.status)
			}
			secretPage := b.submit(p, map[string]string{"password": erin.password})
			_, values := secretPage.form(t)
			erin.totpSecret = secretOn(t, secretPage)
			if !strings.Contains(secretPage.body, "data:image/png;base64,") || values.Get("token") == "" {
				t.Fatalf("no QR code or secret after the password:\n%s", secretPage.body)
			}
			// Another browser cannot continue the claimed link.
			if r := newBrowser(t, f.s).get(link); r.status != http.StatusForbidden {
				t.Fatalf("claimed link in another browser: %d", r.status)
			}
			if r := b.submit(secretPage, map[string]string{"otp": wrongCode(f.s.code(t, erin))}); r.status != http.StatusForbidden {
				t.Fatalf("wrong confirmation code: %d", r.status)
			}
			code := f.s.code(t, erin)
			if r := b.submit(secretPage, map[string]string{"otp": code}); r.status != http.StatusOK || !strings.Contains(r.body, "ready") {
				t.Fatalf("confirmation: %d\n%s", r.status, r.body)
			}
			if r := b.get(link); r.status != http.StatusGone {
				t.Fatalf("used link: %d, want 410", r.status)
			}
			// The confirming code cannot be replayed at sign-in; the next one signs in.
			in := newBrowser(t, f.s)
			otp := f.otpPage(t, in, f.rp.authorize(), erin)
			if r := in.submit(otp, map[string]string{"otp": code}); r.status != http.StatusForbidden {
				t.Fatalf("the confirmation code replayed at sign-in: %d", r.status)
			}
			f.nextStep()
			f.finish(t, in, otp, f.s.code(t, erin))
		})
	}
}

// secretOn reads the secret shown on the enrolment page.
func secretOn(t *testing.T, p *page) string {
	t.Helper()
	_, rest, ok := strings.Cut(p.body, `id="secret">`)
	secret, _, _ := strings.Cut(rest, "<")
	if !ok || len(secret) < 16 {
		t.Fatalf("no secret on the page:\n%s", p.body)
	}
	return secret
}

// TestMaintenance: the background pass deletes what can no longer be used
// and keeps what can.
func TestMaintenance(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t))
	tokens := f.offline(t)
	jti := claimOf(t, tokens["access_token"].(string), "jti")
	if _, err := f.s.db.GetAccessToken(t.Context(), jti); err != nil {
		t.Fatalf("access token row before the pass: %v", err)
	}
	f.s.clock.Advance(2 * time.Hour) // the access token is long expired; the refresh token lives on
	f.s.maintain(t.Context())
	if _, err := f.s.db.GetAccessToken(t.Context(), jti); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("expired access token row after the pass: %v", err)
	}
	if status, body := f.refresh(t, tokens["refresh_token"].(string), "app", f.secret); status != http.StatusOK {
		t.Fatalf("the pass removed a live refresh token: %d %v", status, body)
	}
}

// claimOf reads a claim from a JWT's payload, unverified.
func claimOf(t *testing.T, jwt, name string) string {
	t.Helper()
	var claims map[string]any
	if err := json.Unmarshal(decodeSegment(t, strings.Split(jwt, ".")[1]), &claims); err != nil {
		t.Fatal(err)
	}
	v, _ := claims[name].(string)
	return v
}

func decodeSegment(t *testing.T, seg string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
