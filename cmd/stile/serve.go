package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/stile-id/stile/demo"
)

func (c *cli) serveCommand() *cobra.Command {
	var issuer, listen string
	var withDemo bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the OpenID provider",
		Long: "Run the OpenID provider. The schema is migrated at start, under a lock, so several\n" +
			"instances on one PostgreSQL can start together.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.serve(cmd.Context(), issuer, listen, withDemo)
		},
	}
	f := cmd.Flags()
	envFlag(f, &issuer, "issuer", "http://localhost:8080", "STILE_ISSUER", "the public URL clients reach stile at")
	envFlag(f, &listen, "listen", ":8080", "STILE_LISTEN", "address to listen on")
	f.BoolVar(&withDemo, "demo", false, "seed a demo client and user, serve the demo client, and print how to sign in")
	return cmd
}

func (c *cli) serve(ctx context.Context, issuer, listen string, withDemo bool) error {
	env, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer env.Close()
	slog.SetDefault(env.log) // the OpenID library logs through the default logger
	cfg := appConfig{Issuer: issuer, DB: env.db, Master: env.master, Now: time.Now, Log: env.log}
	var seeded *demoSeed
	if withDemo {
		if seeded, err = seedDemo(ctx, env, issuer); err != nil {
			return err
		}
		cfg.Demo = &demo.Config{Issuer: issuer, ClientID: seeded.clientID, ClientSecret: seeded.clientSecret, Log: env.log}
	}
	handler, err := newApp(ctx, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", listen, err)
	}
	srv := &http.Server{
		Handler:           handler,
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
