package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/demo"
	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/internal/edge"
	"github.com/stile-id/stile/internal/metrics"
	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
)

// appConfig is everything the HTTP application is built from. Tests fill
// it directly, with their own clock; `stile serve` fills it from flags.
type appConfig struct {
	Issuer string
	DB     *storage.DB
	// DatabaseURL is DB's URL: on PostgreSQL the cache listens for
	// changes on a connection of its own. Empty: it only polls.
	DatabaseURL string
	// CacheRevalidate bounds how long the client cache answers without
	// checking the database's cache_version; zero: storage's default.
	CacheRevalidate time.Duration
	CacheIsolated   bool // see storage.CacheOptions.Isolated; tests only
	Master          *keys.Master
	Now             func() time.Time
	Log             *slog.Logger
	Hasher          login.Hasher // nil: login.DefaultArgon2id; always run inside the hashing pool
	Demo            *demo.Config // nil unless --demo

	// HashPool bounds how many password hashes run at once; zero: derived.
	HashPool hashPool

	Lifetimes                    op.Lifetimes   // zero: op.DefaultLifetimes
	SessionIdle, SessionAbsolute time.Duration  // zero: login's defaults
	Delivery                     login.Delivery // how codes and notices are sent; zero: not at all

	// TrustedProxies are the proxies whose Forwarded / X-Forwarded-For
	// headers name the client; none: the headers are ignored.
	TrustedProxies []netip.Prefix
	// Limits per source address, account and destination; nil: the defaults.
	LoginLimits *login.Limits
	OPLimits    *op.Limits
	// MetricsApart keeps /metrics off the main handler (--metrics-listen
	// serves app.metrics on its own address).
	MetricsApart bool
	// SigningAlg is the signing algorithm chosen for clients that pin
	// none; empty: keep the database's (RS256 on a new one).
	SigningAlg string
	// EventsRetention is how long audit events are kept; zero:
	// DefaultEventsRetention; negative: forever.
	EventsRetention time.Duration
	// KeyRotation is how long a signing key signs before the automatic
	// rotation replaces it; zero: keys.DefaultRotation; negative: never.
	KeyRotation time.Duration
	// AdminRate is each client's request budget at /api/v1; zero: admin.DefaultRate.
	AdminRate storage.Rate
	// SignInWith is what users identify themselves with; nil: usernames.
	SignInWith login.SignInWith
}

// app is the wired application: its handler, and what runs beside it.
type app struct {
	handler  http.Handler
	maintain func(context.Context) // one pass of background maintenance
	metrics  *metrics.Metrics
	settle   func() // waits for codes still being sent in the background (passwordless)
}

// newApp wires the packages into one application.
func newApp(ctx context.Context, c appConfig) (*app, error) {
	if c.Hasher == nil {
		c.Hasher = login.DefaultArgon2id
	}
	// Clients and keys are read from memory from now on (storage/cache.go).
	if err := c.DB.StartCache(ctx, storage.CacheOptions{ListenURL: c.DatabaseURL, Revalidate: c.CacheRevalidate,
		Log: c.Log, Isolated: c.CacheIsolated}); err != nil {
		return nil, fmt.Errorf("start the client cache: %w", err)
	}
	// Every hash goes through the pool, a test's own hasher too: the bound
	// is part of what the tests exercise.
	pool := login.NewPool(c.Hasher, c.HashPool.size(), c.HashPool.Wait, c.Log)
	pool.FreeIdle = 2 * time.Second // a quiet server gives argon2's memory back (issue 10: RSS after load)
	m := newMetrics(pool, c.DB)
	c.Hasher = pool
	if c.Lifetimes == (op.Lifetimes{}) {
		c.Lifetimes = op.DefaultLifetimes
	}
	sealer := keys.NewSealer(c.Master)
	signing := keys.NewManager(c.DB, sealer, c.Now, max(c.Lifetimes.AccessToken, c.Lifetimes.IDToken))
	if err := signing.Ensure(ctx, c.SigningAlg); err != nil {
		return nil, err
	}
	rotation := keyRotation(c.KeyRotation)
	if err := c.DB.SetKeyRotation(ctx, rotation); err != nil { // for stile keys list
		c.Log.Warn("the key rotation period is not recorded: stile keys list cannot tell when keys are due", "err", err)
	}
	secure := strings.HasPrefix(c.Issuer, "https://")
	binder := login.NewBinder(c.Master.Derive("browser-binding"), secure)
	sessions := login.NewSessions(c.DB, c.Master.Derive("session-cookie"), secure, c.Now)
	if c.SessionIdle > 0 {
		sessions.Idle = c.SessionIdle
	}
	if c.SessionAbsolute > 0 {
		sessions.Absolute = c.SessionAbsolute
	}
	provider, err := op.New(op.Config{
		Issuer: c.Issuer, DB: c.DB, Keys: signing, Master: c.Master, Lifetimes: c.Lifetimes, Log: c.Log,
		CheckBrowser: func(r *http.Request, id string) error { return binder.Check(r, c.DB, id) },
		Sessions:     sessions,
		Limits:       c.OPLimits,
		Counter:      m,
	})
	if err != nil {
		return nil, err
	}
	flow, err := login.NewFlow(login.Config{
		DB: c.DB, Hasher: c.Hasher, Sealer: sealer, Sessions: sessions, Pepper: c.Master.Derive("username-pepper"),
		Now: c.Now, Log: c.Log, Issuer: c.Issuer, IssuerLabel: issuerLabel(c.Issuer), Delivery: c.Delivery,
		CodeKeys:    codeKeys(c.Master),
		Limits:      c.LoginLimits,
		DeviceKey:   c.Master.Derive("device-cookie"),
		Counter:     m,
		SignInWith:  c.SignInWith,
		CallbackURL: func(_ context.Context, id string) string { return provider.CallbackURL(id) },
		IssueDirect: func(ctx context.Context, clientID, userID string, amr []string, at time.Time) (*login.DirectTokens, error) {
			t, err := provider.IssueDirect(ctx, clientID, userID, amr, at)
			if err != nil {
				return nil, err
			}
			return (*login.DirectTokens)(t), nil
		},
		Challenge: challengeProvider{provider},
	})
	if err != nil {
		return nil, err
	}

	r := mux.NewRouter()
	r.Use(m.Route)
	if !c.MetricsApart {
		r.Handle("/metrics", m.Handler()).Methods(http.MethodGet, http.MethodHead)
	}
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	r.HandleFunc("/readyz", readiness(c.DB, signing, c.Log))
	authorize := func(r *http.Request) (*login.Principal, error) {
		b, err := provider.AuthorizeBearer(r)
		if err != nil {
			return nil, err
		}
		return &login.Principal{UserID: b.UserID, ClientID: b.ClientID, Scopes: b.Scopes, AuthTime: b.AuthTime, FirstParty: b.FirstParty}, nil
	}
	login.NewHandler(flow, binder, sessions, authorize, c.Log).Mount(r)
	if c.Demo != nil {
		demo.New(*c.Demo).Mount(r)
	}
	mountAdmin(r, c, provider, flow.Accounts())
	provider.Mount(r) // last: it ends in a catch-all
	return &app{
		handler:  frame(c.Issuer, c.TrustedProxies, m.HTTP(limitBody(clientip.New(c.TrustedProxies).Middleware(logRequests(c.Log, edge.Text(r)))))),
		maintain: maintenance(c.DB, signing, sessions.Idle, eventsRetention(c.EventsRetention), rotation, c.Log),
		metrics:  m,
		settle:   flow.Settle,
	}, nil
}

// DefaultEventsRetention is how long the audit trail keeps an event.
const DefaultEventsRetention = 90 * 24 * time.Hour

func eventsRetention(d time.Duration) time.Duration {
	if d == 0 {
		return DefaultEventsRetention
	}
	return max(d, 0) // negative: kept forever
}

// keyRotation is appConfig.KeyRotation as maintenance takes it: 0 is off.
func keyRotation(d time.Duration) time.Duration {
	if d == 0 {
		return keys.DefaultRotation
	}
	return max(d, 0)
}

// newMetrics makes the application's registry and watches the hashing
// pool and the database pool from it.
func newMetrics(pool *login.Pool, db *storage.DB) *metrics.Metrics {
	m := metrics.New("/keys") // the library serves the JWKS under the provider's catch-all
	pool.Waited = m.HashWaited
	m.WatchHashPool(pool)
	name := string(db.Dialect())
	if db.SeparateReadPool() {
		m.WatchDB(name, "write", db.Stats)
		m.WatchDB(name, "read", db.ReadStats)
	} else {
		m.WatchDB(name, "shared", db.Stats)
	}
	return m
}

// limitBody caps request bodies: nothing stile accepts is larger.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		next.ServeHTTP(w, r)
	})
}

// logRequests logs every request's method, path, status and duration. It
// never logs the query string, where codes and IDs travel.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.LogAttrs(r.Context(), slog.LevelInfo, "http", slog.String("method", r.Method), slog.String("path", logPath(r.URL.Path)),
			slog.Int("status", rec.status), slog.Duration("took", time.Since(start).Round(time.Microsecond)),
			slog.String("remote", r.RemoteAddr), slog.Any("client", clientip.From(r.Context())))
	})
}

// logPath is a request's path as the log shows it: the management API's
// lookups by username and email carry personal data in the path, which
// stays out of the log.
func logPath(p string) string {
	for _, prefix := range []string{"/api/v1/users/by-email/", "/api/v1/users/by-username/"} {
		if strings.HasPrefix(p, prefix) {
			return prefix + "…"
		}
	}
	return p
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// codeKeys are the MAC keys of one-time codes, recovery codes, API keys and
// the JSON API's loginTokens.
func codeKeys(m *keys.Master) login.CodeKeys {
	return login.CodeKeys{OTP: m.Derive("otp-code"), Recovery: m.Derive("recovery-code"), APIKey: m.Derive("api-key"),
		LoginToken: m.Derive("api-login-token"), Challenge: m.Derive("challenge-binding")}
}
