package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/op"
)

// serveOptions are serve's flags.
type serveOptions struct {
	issuer, listen string
	demo           bool
	lifetimes      op.Lifetimes
	sessionIdle    time.Duration
	sessionAbs     time.Duration
	delivery       deliveryOptions
	trustedProxies string

	// the password hashing pool
	hashConcurrency int
	hashMemory      string // a byte size: 512MiB, 1GiB, or plain bytes
	hashWait        time.Duration
}

func (c *cli) serveCommand() *cobra.Command {
	o := serveOptions{lifetimes: op.DefaultLifetimes}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the OpenID provider",
		Long: "Run the OpenID provider. The schema is migrated at start, under a lock, so several\n" +
			"instances on one PostgreSQL can start together.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.serve(cmd.Context(), o) },
	}
	f := cmd.Flags()
	envFlag(f, &o.issuer, "issuer", "http://localhost:8080", "STILE_ISSUER", "the public URL clients reach stile at")
	envFlag(f, &o.listen, "listen", ":8080", "STILE_LISTEN", "address to listen on")
	f.BoolVar(&o.demo, "demo", false, "seed a demo client and user, serve the demo client, and print how to sign in")
	l := &o.lifetimes
	durationFlag(f, &l.AccessToken, "access-token-lifetime", "STILE_ACCESS_TOKEN_LIFETIME", "default access token lifetime")
	durationFlag(f, &l.IDToken, "id-token-lifetime", "STILE_ID_TOKEN_LIFETIME", "default ID token lifetime")
	durationFlag(f, &l.RefreshIdle, "refresh-token-idle", "STILE_REFRESH_TOKEN_IDLE", "a refresh token unused this long expires")
	durationFlag(f, &l.RefreshAbsolute, "refresh-token-absolute", "STILE_REFRESH_TOKEN_ABSOLUTE", "refresh tokens expire this long after the sign-in")
	durationFlag(f, &l.RefreshGrace, "refresh-token-grace", "STILE_REFRESH_TOKEN_GRACE",
		"a used refresh token still works this long, for concurrent retries; 0: never")
	o.sessionIdle, o.sessionAbs = login.DefaultSessionIdle, login.DefaultSessionAbsolute
	durationFlag(f, &o.sessionIdle, "session-idle", "STILE_SESSION_IDLE", "an SSO session unused this long ends")
	durationFlag(f, &o.sessionAbs, "session-absolute", "STILE_SESSION_ABSOLUTE", "an SSO session ends this long after the sign-in")
	envFlag(f, &o.trustedProxies, "trusted-proxies", "", "STILE_TRUSTED_PROXIES",
		"comma-separated CIDRs of reverse proxies whose X-Forwarded-For/Forwarded headers name the client; empty: headers ignored")
	o.hashWait = login.DefaultPoolWait
	f.IntVar(&o.hashConcurrency, "password-hash-concurrency", 0,
		"password hashes run at once (env STILE_PASSWORD_HASH_CONCURRENCY); 0: two per core, within --password-hash-memory")
	f.SetAnnotation("password-hash-concurrency", "env", []string{"STILE_PASSWORD_HASH_CONCURRENCY"})
	envFlag(f, &o.hashMemory, "password-hash-memory", "512MiB", "STILE_PASSWORD_HASH_MEMORY",
		"memory the password hashes may use at once (each argon2id check takes 64MiB)")
	durationFlag(f, &o.hashWait, "password-hash-wait", "STILE_PASSWORD_HASH_WAIT",
		"how long a password check waits for a free hash before answering 503")
	o.delivery.register(f)
	return cmd
}

// durationFlag defines a duration flag, defaulting to *p, with an
// environment fallback.
func durationFlag(fs *pflag.FlagSet, p *time.Duration, name, env, usage string) {
	fs.DurationVar(p, name, *p, fmt.Sprintf("%s (env %s)", usage, env))
	fs.SetAnnotation(name, "env", []string{env})
}

func (o *serveOptions) validate() error {
	l := o.lifetimes
	for name, d := range map[string]time.Duration{"--access-token-lifetime": l.AccessToken, "--id-token-lifetime": l.IDToken,
		"--refresh-token-idle": l.RefreshIdle, "--refresh-token-absolute": l.RefreshAbsolute,
		"--session-idle": o.sessionIdle, "--session-absolute": o.sessionAbs} {
		if d <= 0 {
			return fmt.Errorf("%s must be positive, not %s", name, d)
		}
	}
	if _, err := clientip.ParseTrusted(strings.Split(o.trustedProxies, ",")); err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	if l.RefreshGrace < 0 || l.RefreshGrace > time.Minute {
		return fmt.Errorf("--refresh-token-grace must be between 0 and 1m, not %s", l.RefreshGrace)
	}
	_, err := o.hashPool()
	return err
}

// hashPool checks the password hashing flags and returns the pool they
// describe. The memory budget is a promise: a pool whose hashes could use
// more than it is refused, rather than quietly exceeded.
func (o *serveOptions) hashPool() (hashPool, error) {
	m, err := humanize.ParseBytes(o.hashMemory)
	if err == nil && m > 1<<50 {
		err = fmt.Errorf("%s is more than a petabyte", o.hashMemory)
	}
	mem := int64(m)
	if err != nil {
		return hashPool{}, fmt.Errorf("--password-hash-memory: %w", err)
	}
	per := login.DefaultArgon2id.MemoryBytes()
	p := hashPool{Size: o.hashConcurrency, Memory: mem, Wait: o.hashWait}
	switch {
	case mem < per:
		return p, fmt.Errorf("--password-hash-memory %s is less than one password hash needs (%s)", o.hashMemory, humanize.IBytes(uint64(per)))
	case o.hashConcurrency < 0 || o.hashConcurrency > 4096:
		return p, fmt.Errorf("--password-hash-concurrency must be between 0 (derive) and 4096, not %d", o.hashConcurrency)
	case int64(o.hashConcurrency)*per > mem:
		return p, fmt.Errorf("--password-hash-concurrency %d needs %s, more than --password-hash-memory %s: raise the memory or lower the concurrency",
			o.hashConcurrency, humanize.IBytes(uint64(o.hashConcurrency)*uint64(per)), o.hashMemory)
	case o.hashWait <= 0 || o.hashWait > 30*time.Second:
		return p, fmt.Errorf("--password-hash-wait must be between 0 and 30s, not %s", o.hashWait)
	}
	return p, nil
}

func (c *cli) serve(ctx context.Context, o serveOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	issuer, listen := o.issuer, o.listen
	env, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer env.Close()
	slog.SetDefault(env.log) // the OpenID library logs through the default logger
	delivery, err := o.delivery.delivery(env.log)
	if err != nil {
		return err
	}
	cfg := appConfig{Issuer: issuer, DB: env.db, Master: env.master, Now: time.Now, Log: env.log,
		Lifetimes: o.lifetimes, SessionIdle: o.sessionIdle, SessionAbsolute: o.sessionAbs, Delivery: delivery}
	cfg.TrustedProxies, _ = clientip.ParseTrusted(strings.Split(o.trustedProxies, ","))
	cfg.HashPool, _ = o.hashPool()
	var seeded *demoSeed
	if o.demo {
		if seeded, err = seedDemo(ctx, env, issuer); err != nil {
			return err
		}
		cfg.Demo = seeded.config(issuer, env.log)
	}
	a, err := newApp(ctx, cfg)
	if err != nil {
		return err
	}
	a.maintain(ctx)
	go runMaintenance(ctx, a.maintain, maintainEvery)
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", listen, err)
	}
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	env.log.Info("stile is listening", "issuer", issuer, "address", ln.Addr().String(), "database", env.db.Dialect())
	if seeded != nil {
		seeded.print(c.stdout, issuer)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	env.log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
