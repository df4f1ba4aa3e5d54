package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/stile-id/stile/keys"
)

// How `stile serve` runs its listener: it listens before anything else,
// so an orchestrator sees /healthz (200: the process runs) and /readyz
// (503 and why) while the schema is migrated and the application built;
// every other path gets 503 with Retry-After until the application is
// swapped in. SIGHUP re-reads the TLS pair; SIGINT/SIGTERM stop accepting,
// let requests in flight finish within --shutdown-timeout, then cut off
// what is left.

// DefaultShutdownTimeout is how long requests in flight get at shutdown.
const DefaultShutdownTimeout = 20 * time.Second

// servingOptions are serve's flags for the listener itself.
type servingOptions struct {
	tls             tlsOptions
	shutdownTimeout time.Duration
}

func (o *servingOptions) register(f *pflag.FlagSet) {
	envFlag(f, &o.tls.cert, "tls-cert", "", "STILE_TLS_CERT",
		"serve https with this PEM certificate chain (with --tls-key); re-read on SIGHUP; empty: plain http, for a TLS-terminating proxy")
	envFlag(f, &o.tls.key, "tls-key", "", "STILE_TLS_KEY", "the PEM private key of --tls-cert")
	o.shutdownTimeout = DefaultShutdownTimeout
	durationFlag(f, &o.shutdownTimeout, "shutdown-timeout", "STILE_SHUTDOWN_TIMEOUT",
		"on SIGINT/SIGTERM, how long requests in flight may take to finish before they are cut off")
}

func (o *servingOptions) validate() error {
	if o.shutdownTimeout < 0 {
		return fmt.Errorf("--shutdown-timeout cannot be negative, not %s", o.shutdownTimeout)
	}
	return o.tls.validate()
}

// warn names the likely misconfigurations of TLS.
func (o *servingOptions) warn(issuer string, trusted []netip.Prefix, log *slog.Logger) {
	https := strings.HasPrefix(issuer, "https://")
	switch {
	case https && o.tls.cert == "" && len(trusted) == 0:
		log.Warn("the issuer is https but stile serves plain http and trusts no proxy: terminate TLS at a reverse proxy "+
			"and name it with --trusted-proxies, or serve https with --tls-cert and --tls-key (docs/deployment.md)", "issuer", issuer)
	case !https && o.tls.cert != "":
		log.Warn("--tls-cert is set but the issuer is http: clients are sent to http URLs; give an https --issuer", "issuer", issuer)
	}
}

// front is the main listener and what it serves.
type front struct {
	srv      *http.Server
	ln       net.Listener
	app      atomic.Pointer[http.Handler] // nil until the application is ready
	reason   atomic.Pointer[string]       // why /readyz says no while starting
	waiting  http.Handler                 // what answers until then
	inflight atomic.Int64                 // requests being handled
	certs    *certificates                // nil: plain http
	log      *slog.Logger
	errc     chan error
	stopHUP  func()
}

// listen opens the main listener and serves the starting handler on it
// at once.
func (o *servingOptions) listen(addr, issuer string, trusted []netip.Prefix, log *slog.Logger) (*front, error) {
	f := &front{log: log, errc: make(chan error, 1)}
	if o.tls.cert != "" {
		certs, err := loadCertificates(o.tls.cert, o.tls.key, log)
		if err != nil {
			return nil, err
		}
		f.certs = certs
	}
	f.starting("migrating the database")
	f.waiting = frame(issuer, trusted, startingMux(f))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", addr, err)
	}
	f.ln = ln
	f.srv = &http.Server{
		Handler:           f,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	f.watchHUP()
	if f.certs != nil {
		f.srv.TLSConfig = f.certs.config()
		go func() { f.errc <- f.srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { f.errc <- f.srv.Serve(ln) }()
	}
	log.Info("stile is starting: /healthz and /readyz answer, the rest waits for the application",
		"address", ln.Addr().String(), "tls", f.certs != nil)
	return f, nil
}

func startingMux(f *front) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not ready: "+*f.reason.Load(), http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "stile is starting; try again in a few seconds", http.StatusServiceUnavailable)
	})
	return mux
}

// starting says what stile is doing before it is ready.
func (f *front) starting(reason string) { f.reason.Store(&reason) }

// ready swaps the application in.
func (f *front) ready(h http.Handler) { f.app.Store(&h) }

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.inflight.Add(1)
	defer f.inflight.Add(-1)
	if h := f.app.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	f.waiting.ServeHTTP(w, r)
}

// watchHUP re-reads the TLS pair on every SIGHUP, from the first moment
// on: a SIGHUP's default is to end the process.
func (f *front) watchHUP() {
	hup := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				if f.certs == nil {
					f.log.Info("SIGHUP: nothing to reload (no --tls-cert)")
					continue
				}
				f.certs.reload()
			}
		}
	}()
	f.stopHUP = func() { signal.Stop(hup); close(done) }
}

// run serves until ctx ends (SIGINT, SIGTERM) or the server fails, then
// shuts down gracefully.
func (f *front) run(ctx context.Context, timeout time.Duration) error {
	select {
	case err := <-f.errc:
		return err
	case <-ctx.Done():
	}
	f.log.Info("shutting down: no new connections; requests in flight may finish",
		"in_flight", f.inflight.Load(), "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := f.srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		n := f.inflight.Load()
		f.srv.Close()
		f.log.Warn("shutdown timeout: cut off the requests still in flight", "requests", n, "timeout", timeout)
		return nil
	}
	if err != nil {
		return err
	}
	f.log.Info("every request finished")
	return nil
}

// close stops everything at once (serve failed while starting).
func (f *front) close() {
	f.stopHUP()
	f.srv.Close()
}

// readiness is the application's /readyz: 503 when the database does not
// answer or no signing key is active (stile could not issue a token), 200
// otherwise.
func readiness(db interface{ Ping(context.Context) error }, signing interface {
	Active(context.Context) (*keys.Signer, error)
}, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := db.Ping(r.Context()); err != nil {
			log.WarnContext(r.Context(), "not ready: the database does not answer", "err", err)
			http.Error(w, "not ready: the database does not answer", http.StatusServiceUnavailable)
			return
		}
		if s, err := signing.Active(r.Context()); err != nil || s == nil {
			log.WarnContext(r.Context(), "not ready: no active signing key", "err", err)
			http.Error(w, "not ready: no active signing key", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	}
}
