package main

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/stile-id/stile/internal/clocktest"
	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

const rotationIssuer = "http://stile.rotation.test"

// rotationPair is two instances on one database, caching as if each ran in
// its own process, sharing the issuer, master key and clock, with a
// client_credentials client "svc" whose JWT access tokens a backend verifies.
type rotationPair struct {
	servers [2]*server
	clock   *clocktest.Clock
	secret  string
}

func startRotationPair(t *testing.T, dbURL string, rotation time.Duration) *rotationPair {
	t.Helper()
	p := &rotationPair{clock: clocktest.New(time.Now())}
	master := make([]byte, 32)
	rand.Read(master)
	for i := range p.servers {
		p.servers[i] = launch(t, dbURL, launchOptions{issuer: rotationIssuer, masterKey: master, clock: p.clock,
			app: []func(*appConfig){func(c *appConfig) { c.CacheIsolated, c.KeyRotation = true, rotation }}})
	}
	p.secret = p.servers[0].addClient(t, &storage.Client{ID: "svc", Type: storage.ClientWeb,
		GrantTypes: storage.Strings{storage.GrantClientCredentials}, AccessTokenFormat: storage.TokenFormatJWT,
		Audiences: storage.Strings{"api"}, AllowedScopes: storage.Strings{"api:read"}})
	return p
}

// token is a JWT access token from instance i.
func (p *rotationPair) token(t *testing.T, i int) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"}}
	req, _ := http.NewRequest(http.MethodPost, p.servers[i].local+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("svc", url.QueryEscape(p.secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("client_credentials on instance %d: %d %v", i, resp.StatusCode, err)
	}
	return body.AccessToken
}

// kids is the set of kids instance i's /keys publishes.
func (p *rotationPair) kids(t *testing.T, i int) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, k := range jwks(t, &server{URL: p.servers[i].local}) {
		out[k.Kid] = true
	}
	return out
}

// verify checks tok as a backend would, against instance i's JWKS, with
// the test's clock for expiry.
func (p *rotationPair) verify(t *testing.T, i int, tok string) error {
	t.Helper()
	ks := oidc.NewRemoteKeySet(t.Context(), p.servers[i].local+"/keys")
	v := oidc.NewVerifier(rotationIssuer, ks, &oidc.Config{ClientID: "api", Now: p.clock.Now})
	_, err := v.Verify(t.Context(), tok)
	return err
}

// maintainBoth runs both instances' maintenance pass at once.
func (p *rotationPair) maintainBoth(t *testing.T) {
	var wg sync.WaitGroup
	for _, s := range p.servers {
		wg.Go(func() { s.maintain(t.Context()) })
	}
	wg.Wait()
}

func countKeys(t *testing.T, db *storage.DB) map[string]int {
	t.Helper()
	stored, err := db.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{"all": len(stored)}
	for _, k := range stored {
		out[k.State]++
	}
	return out
}

// TestAutomaticKeyRotation: two instances on one database (SQLite file,
// PostgreSQL) run their maintenance at once past the 90-day period: exactly
// one next key is stored, both publish it before it signs, both sign with
// it once the overlap has passed, and a token the old key signed just
// before verifies against either instance's JWKS until it expires; the old
// key leaves the JWKS after its publish window. Before 90 days nothing
// rotates.
func TestAutomaticKeyRotation(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			p := startRotationPair(t, d.URL(t), 0) // appConfig's zero: the default, 90 days
			a, db := p.servers[0], p.servers[0].db
			oldKid := kidOf(t, p.token(t, 0))
			if kidOf(t, p.token(t, 1)) != oldKid {
				t.Fatal("the instances sign with different keys at start")
			}

			p.clock.Advance(keys.DefaultRotation - time.Hour)
			p.maintainBoth(t)
			if n := countKeys(t, db); n["all"] != 1 {
				t.Fatalf("an hour before the period: keys %v, want the one", n)
			}

			p.clock.Advance(2 * time.Hour)
			p.maintainBoth(t)
			n := countKeys(t, db)
			if n["all"] != 2 || n[storage.KeyNext] != 1 {
				t.Fatalf("both instances past the period: keys %v, want exactly one new next key", n)
			}
			stored, _ := db.ListSigningKeys(t.Context())
			var next storage.SigningKey
			for _, k := range stored {
				if k.State == storage.KeyNext {
					next = k
				}
			}
			for i := range p.servers {
				within(t, 2*time.Second, "the next key in the JWKS of instance "+string(rune('A'+i)), func() bool {
					k := p.kids(t, i)
					return k[next.ID] && k[oldKid]
				})
				if kid := kidOf(t, p.token(t, i)); kid != oldKid {
					t.Fatalf("instance %d signs with %s before the overlap passed", i, kid)
				}
			}
			events, err := db.ListEvents(t.Context(), storage.EventFilter{Type: "key.rotated"})
			if err != nil || len(events) != 1 || events[0].Actor != rotationActor || events[0].Detail["kid"] != next.ID ||
				events[0].Detail["replaces"] != oldKid {
				t.Fatalf("audit events %+v (%v): want one key.rotated by %s", events, err, rotationActor)
			}
			p.maintainBoth(t) // later passes change nothing
			if n := countKeys(t, db); n["all"] != 2 {
				t.Fatalf("another pass while the successor waits: keys %v", n)
			}
			if out := a.stile(t, "keys", "list"); !strings.Contains(out, "automatic rotation: every 90d") {
				t.Fatalf("keys list does not say how keys rotate:\n%s", out)
			}

			// Just before the overlap ends the old key signs; just after, the new one, on both.
			p.clock.Advance(keys.RotationOverlap - 2*time.Minute)
			oldTok := p.token(t, 0)
			if kidOf(t, oldTok) != oldKid {
				t.Fatal("the old key stopped signing before the overlap passed")
			}
			p.clock.Advance(3 * time.Minute)
			p.maintainBoth(t)
			for i := range p.servers {
				if kid := kidOf(t, p.token(t, i)); kid != next.ID {
					t.Fatalf("after the overlap instance %d signs with %s, want %s", i, kid, next.ID)
				}
				if err := p.verify(t, i, oldTok); err != nil {
					t.Fatalf("the old key's token against instance %d's JWKS: %v", i, err)
				}
			}
			// It verifies until it expires (10 minutes), not after.
			p.clock.Advance(10 * time.Minute)
			for i := range p.servers {
				if err := p.verify(t, i, oldTok); err == nil || !strings.Contains(err.Error(), "expired") {
					t.Fatalf("the old key's token after it expired, on instance %d: %v; want expired", i, err)
				}
				if !p.kids(t, i)[oldKid] {
					t.Fatalf("instance %d withdrew the old key before its publish window ended", i)
				}
			}
			// The publish window is the longest lifetime plus 5 minutes.
			p.clock.Advance(6 * time.Minute)
			p.maintainBoth(t)
			p.clock.Advance(2 * time.Minute) // past the key cache
			for i := range p.servers {
				if k := p.kids(t, i); k[oldKid] || !k[next.ID] {
					t.Fatalf("instance %d's JWKS after the publish window: %v", i, k)
				}
			}
		})
	}
}

// TestKeyRotationOff: with --key-rotation 0 nothing rotates, however old
// the key; beside it the default rotates (TestAutomaticKeyRotation).
func TestKeyRotationOff(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			var off retentionFlag
			if err := off.Set("0"); err != nil {
				t.Fatal(err)
			}
			p := startRotationPair(t, d.URL(t), off.config())
			p.clock.Advance(3 * keys.DefaultRotation)
			p.maintainBoth(t)
			if n := countKeys(t, p.servers[0].db); n["all"] != 1 {
				t.Fatalf("rotation off, 270 days on: keys %v, want the one", n)
			}
			if out := p.servers[0].stile(t, "keys", "list"); !strings.Contains(out, "automatic rotation: off") {
				t.Fatalf("keys list with rotation off:\n%s", out)
			}
		})
	}
}
