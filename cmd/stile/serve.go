package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/keys"
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
	hashPool       hashPoolOptions
	opLimits       op.Limits
	loginLimits    login.Limits
	side           sideOptions
	signingAlg     string
	dbPool         dbPoolOptions
	events         retentionFlag
	keyRotation    retentionFlag
	signInWith     string
	serving        servingOptions
}

// newServeOptions are serve's defaults, before any flag.
func newServeOptions() *serveOptions {
	return &serveOptions{lifetimes: op.DefaultLifetimes, opLimits: op.DefaultLimits, loginLimits: login.DefaultLimits}
}

func (c *cli) serveCommand() *cobra.Command {
	o := newServeOptions()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the OpenID provider",
		Long: "Run the OpenID provider. The schema is migrated at start, under a lock, so several\n" +
			"instances on one PostgreSQL can start together. Settings come from flags, STILE_*\n" +
			"variables and the --config file, in that order; stile config check shows the result.",
		Args:        cobra.NoArgs,
		Annotations: collects,
		RunE:        func(cmd *cobra.Command, _ []string) error { return c.serve(cmd.Context(), o) },
	}
	o.register(cmd.Flags())
	return cmd
}

// register defines serve's flags on f; config check shares them.
func (o *serveOptions) register(f *pflag.FlagSet) {
	envFlag(f, &o.issuer, "issuer", "", "STILE_ISSUER",
		"the public URL clients reach stile at; default http://localhost:PORT with --listen's port (its host if one is given)")
	envFlag(f, &o.listen, "listen", ":8080", "STILE_LISTEN", "address to listen on; with --demo 127.0.0.1:8080 unless given")
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
	o.hashPool.register(f)
	rateFlag(f, &o.opLimits.AuthorizePerAddress, "authorize-rate", "STILE_AUTHORIZE_RATE",
		"authorization requests stored per source address, N/DURATION; cannot be 0")
	rateFlag(f, &o.opLimits.TokenPerAddress, "token-rate", "STILE_TOKEN_RATE",
		"token, introspection, revocation and authorization challenge calls per source address, N/DURATION; 0/1m: off")
	registerLoginLimits(f, &o.loginLimits)
	o.delivery.register(f)
	o.side.register(f)
	o.dbPool.register(f)
	o.serving.register(f)
	o.events = retentionFlag(DefaultEventsRetention)
	f.Var(&o.events, "events-retention", "how long audit events are kept, e.g. 2160h or 90d; 0: forever (env STILE_EVENTS_RETENTION)")
	f.SetAnnotation("events-retention", "env", []string{"STILE_EVENTS_RETENTION"})
	o.keyRotation = retentionFlag(keys.DefaultRotation)
	f.Var(&o.keyRotation, "key-rotation", "how long a signing key signs before a successor is published, which signs a day later, "+
		"e.g. 2160h or 90d; 0: never rotate automatically (env STILE_KEY_ROTATION)")
	f.SetAnnotation("key-rotation", "env", []string{"STILE_KEY_ROTATION"})
	envFlag(f, &o.signInWith, "sign-in-with", login.IdentifyByUsername, "STILE_SIGN_IN_WITH",
		"what users sign in with: username, email or phone, or a comma-separated list such as username,email")
	envFlag(f, &o.signingAlg, "signing-alg", "", "STILE_SIGNING_ALG", "the algorithm tokens are signed with: RS256, ES256 or EdDSA; "+
		"a change publishes a key of it that signs after 1h; empty: keep the current one (RS256 on a new database)")
}

// durationFlag defines a duration flag, defaulting to *p, with an
// environment fallback.
func durationFlag(fs *pflag.FlagSet, p *time.Duration, name, env, usage string) {
	fs.DurationVar(p, name, *p, fmt.Sprintf("%s (env %s)", usage, env))
	fs.SetAnnotation(name, "env", []string{env})
}

// retentionFlag is --events-retention and --key-rotation: a duration, or
// whole days ("90d"); 0 turns the thing off.
type retentionFlag time.Duration

func (r *retentionFlag) String() string { return days(time.Duration(*r)) }

// days prints d in whole days when it is some ("90d"), as parseDays reads it.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 && d > 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func (r *retentionFlag) Set(s string) error {
	d, err := parseDays(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("cannot be negative: %s", s)
	}
	*r = retentionFlag(d)
	return nil
}

func (r *retentionFlag) Type() string { return "duration" }

// config is the flag as appConfig takes it: 0 there means the default,
// so "keep forever" is negative.
func (r retentionFlag) config() time.Duration {
	if r == 0 {
		return -1
	}
	return time.Duration(r)
}

// validate checks every flag and returns every problem found, joined.
func (o *serveOptions) validate() error {
	var errs []error
	l := o.lifetimes
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"--access-token-lifetime", l.AccessToken}, {"--id-token-lifetime", l.IDToken},
		{"--refresh-token-idle", l.RefreshIdle}, {"--refresh-token-absolute", l.RefreshAbsolute},
		{"--session-idle", o.sessionIdle}, {"--session-absolute", o.sessionAbs}} {
		if d.d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %s", d.name, d.d))
		}
	}
	if _, err := clientip.ParseTrusted(strings.Split(o.trustedProxies, ",")); err != nil {
		errs = append(errs, fmt.Errorf("--trusted-proxies: %w", err))
	}
	if o.opLimits.AuthorizePerAddress.Limit < 1 {
		errs = append(errs, errAuthorizeRateOff)
	}
	if l.RefreshGrace < 0 || l.RefreshGrace > time.Minute {
		errs = append(errs, fmt.Errorf("--refresh-token-grace must be between 0 and 1m, not %s", l.RefreshGrace))
	}
	if o.signingAlg != "" {
		if _, err := keys.ParseAlgorithm(o.signingAlg); err != nil {
			errs = append(errs, fmt.Errorf("--signing-alg: %w", err))
		}
	}
	if _, err := o.hashPool.pool(); err != nil {
		errs = append(errs, err)
	}
	if _, err := o.identifiers(); err != nil {
		errs = append(errs, fmt.Errorf("--sign-in-with: %w", err))
	}
	errs = append(errs, o.dbPool.validate(), o.side.validate(), o.delivery.validate(), o.serving.validate())
	return errors.Join(errs...)
}

func (c *cli) serve(ctx context.Context, o *serveOptions) error {
	warnings, err := c.settle(o)
	if err != nil {
		return err
	}
	log := c.logger()
	slog.SetDefault(log) // the OpenID library logs through the default logger
	logWarnings(log, warnings)
	trusted, _ := clientip.ParseTrusted(strings.Split(o.trustedProxies, ","))
	o.serving.warn(o.issuer, trusted, log)
	front, err := o.serving.listen(o.listen, o.issuer, trusted, log) // /healthz and /readyz answer from now on
	if err != nil {
		return err
	}
	defer front.close()
	if c.settings.source("issuer").kind == fromDerived {
		o.issuer = deriveIssuer(o.listen, front.ln.Addr()) // --listen :0 gets a port only now
	}
	issuer := o.issuer
	env, err := c.open(ctx, o.dbPool.option())
	if err != nil {
		return err
	}
	defer env.Close()
	front.starting("building the application")
	delivery, err := o.delivery.delivery(env.log)
	if err != nil {
		return err
	}
	cfg := appConfig{Issuer: issuer, DB: env.db, DatabaseURL: c.database, Master: env.master, Now: time.Now, Log: env.log,
		Lifetimes: o.lifetimes, SessionIdle: o.sessionIdle, SessionAbsolute: o.sessionAbs, Delivery: delivery,
		OPLimits: &o.opLimits, LoginLimits: &o.loginLimits, MetricsApart: o.side.metricsListen != "", SigningAlg: o.signingAlg,
		EventsRetention: o.events.config(), KeyRotation: o.keyRotation.config()}
	cfg.TrustedProxies = trusted
	cfg.HashPool, _ = o.hashPool.pool()
	cfg.SignInWith, _ = o.identifiers()
	defer limitMemory(cfg.HashPool, env.log)()
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
	atLeastTwoProcs(env.log)
	closeSide, err := o.side.listenSide(a.metrics.Handler(), env.log)
	if err != nil {
		return err
	}
	defer closeSide()
	a.maintain(ctx)
	go runMaintenance(ctx, a.maintain, maintainEvery)
	front.ready(a.handler)
	env.log.Info("stile is listening", "issuer", issuer, "address", front.ln.Addr().String(), "database", env.db.Dialect())
	if seeded != nil {
		seeded.print(c.stdout, issuer)
	}
	err = front.run(ctx, o.serving.shutdownTimeout)
	a.settle() // a passwordless code being sent still leaves
	return err
}

// identifiers reads --sign-in-with; options built without flags (tests)
// leave it empty, which means usernames.
func (o *serveOptions) identifiers() (login.SignInWith, error) {
	if o.signInWith == "" {
		return nil, nil
	}
	return login.ParseSignInWith(o.signInWith)
}
