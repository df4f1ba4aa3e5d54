package main

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stile-id/stile/internal/clocktest"
	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage/storagetest"
)

// cluster is two stile instances on one PostgreSQL behind a proxy that
// hands each request to the other instance in turn, so each step of a
// sign-in lands on another instance than the step before. They share the
// issuer (the proxy's URL), the master key, the clock, a mailbox and an SMS
// gateway; h is the headless fixture seeded through the first, and hits
// counts the requests each instance served.
type cluster struct {
	h       *hfixture
	servers []*server
	hits    [2]atomic.Int64
}

func startCluster(t *testing.T, opts ...func(*appConfig)) *cluster {
	t.Helper()
	dbURL := storagetest.Postgres(t)
	c := &cluster{}
	var backends [2]*httputil.ReverseProxy
	var turn atomic.Uint64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := turn.Add(1) % 2
		c.hits[i].Add(1)
		backends[i].ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	masterKey := make([]byte, 32)
	rand.Read(masterKey)
	clock := clocktest.New(time.Now())
	mb, gw := newMailbox(t), newSMSGateway(t)
	app := append([]func(*appConfig){delivery(t, mb, gw)}, opts...)
	for i := range backends {
		s := launch(t, dbURL, launchOptions{issuer: proxy.URL, masterKey: masterKey, clock: clock, app: app})
		target, _ := url.Parse(s.local)
		backends[i] = httputil.NewSingleHostReverseProxy(target)
		c.servers = append(c.servers, s)
	}
	c.h = seedHeadless(t, c.servers[0], mb, gw)
	return c
}

// TestSeveralInstances runs two stile instances on one PostgreSQL behind a
// proxy that hands each request to the other instance in turn, so each
// step of a sign-in lands on a different instance than the step before.
// Sign-in on stile's pages, the code exchange, refresh, userinfo and
// introspection; the JSON login API with an emailed code, its resend
// cooldown and the code it replaces; the browser binding checked at the
// callback. Nothing an instance keeps in memory may be needed by the other.
func TestSeveralInstances(t *testing.T) {
	c := startCluster(t)
	h := c.h

	t.Run("StilePages", func(t *testing.T) {
		az := h.rp.authorize("scope", "openid offline_access")
		code := h.signIn(t, newBrowser(t, h.s), az, h.alice)
		tok, err := h.rp.exchange(code, az.verifier)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if c := h.rp.idClaims(tok, az.nonce); c["uid"] != h.alice.ID {
			t.Fatalf("ID token: %v", c)
		}
		for range 2 { // userinfo and introspection, once on each instance
			if info, err := h.rp.userinfo(tok); err != nil || info["uid"] != h.alice.ID {
				t.Fatalf("userinfo: %v %v", info, err)
			}
			if got := h.introspect(t, tok.AccessToken, "app", h.secret); got["active"] != true {
				t.Fatalf("introspection: %v", got)
			}
		}
		resp, body := rawToken(t, h.s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, "app", h.secret)
		if resp.StatusCode != http.StatusOK || body["access_token"] == nil {
			t.Fatalf("refresh: %d %v", resp.StatusCode, body)
		}
	})

	t.Run("JSONLoginAPI", func(t *testing.T) {
		b := newBrowser(t, h.s)
		arID, az := h.handoff(t, b)
		r := h.authenticate(t, arID, h.emma)
		if expect(t, "authenticate", r, http.StatusOK, ""); r.str("authType") != login.MethodEmail {
			t.Fatalf("authenticate: %v", r.body)
		}
		tx := r.str("transactionID")
		first := codeIn(t, h.mail.last(t, "emma@example.com", "sign-in code"))
		// The cooldown holds on the other instance too.
		expect(t, "early resend", h.call(t, "/login/api/resend", customOrigin, map[string]string{"transactionID": tx}),
			http.StatusTooManyRequests, "throttled")
		second := h.resendUntilNew(t, tx, first)
		expect(t, "the replaced code", h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": tx, "otp": first}),
			http.StatusForbidden, "invalid_otp")
		v := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": tx, "otp": second})
		if c := h.custom.idClaims(h.finishAPI(t, b, az, v), az.nonce); c["uid"] != h.emma.ID {
			t.Fatalf("ID token: %v", c)
		}
	})

	t.Run("RecoveryCodeOnce", func(t *testing.T) {
		codes := h.recoveryCodes(t, h.alice) // through the CLI, with the instances' master key
		verify := func() apiResult {
			b := newBrowser(t, h.s)
			arID, az := h.handoff(t, b)
			r := h.authenticate(t, arID, h.alice)
			v := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": codes[0]})
			if v.status == http.StatusOK {
				h.finishAPI(t, b, az, v)
			}
			return v
		}
		expect(t, "a recovery code", verify(), http.StatusOK, "")
		expect(t, "the same code again", verify(), http.StatusForbidden, "invalid_otp")
	})

	t.Run("WrongBrowserOnTheOtherInstance", func(t *testing.T) {
		b := newBrowser(t, h.s)
		arID, _ := h.handoff(t, b)
		r := h.authenticate(t, arID, h.alice)
		v := h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": h.s.code(t, h.alice)})
		// Refused at the ticket, before any cookie (doors_test.go).
		if p := newBrowser(t, h.s).get(v.str("redirectURI")); p.url.Path != "/login/session" || p.status != http.StatusForbidden {
			t.Fatalf("another browser following redirectURI ended at %s with %d", p.url, p.status)
		}
	})

	if a, b := c.hits[0].Load(), c.hits[1].Load(); a < 10 || b < 10 {
		t.Fatalf("the proxy sent %d and %d requests to the instances; want both busy", a, b)
	}
}
