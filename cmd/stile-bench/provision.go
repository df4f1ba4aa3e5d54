package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
)

// stileCLI runs the stile binary's operator commands against the server's
// database: stile has no management API yet, and the CLI is the public,
// supported way to create users and clients on a live database.
type stileCLI struct {
	bin, database, secretFile string
}

// run runs one command with --json and decodes its output into out.
func (c stileCLI) run(ctx context.Context, stdin string, out any, args ...string) error {
	args = append(args, "--database", c.database, "--json")
	if c.secretFile != "" {
		args = append(args, "--secret-file", c.secretFile)
	}
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("stile %s: interrupted: %w", strings.Join(args[:2], " "), ctx.Err())
		}
		return fmt.Errorf("stile %s: %w: %s", strings.Join(args[:2], " "), err, lastLine(stderr.String()))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("stile %s: read its JSON: %w", strings.Join(args[:2], " "), err)
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// account is a provisioned user with what its authenticator app knows.
type account struct {
	Username, Password, TOTPSecret string
}

// client is a provisioned OpenID client.
type client struct{ ID, Secret string }

// fixture is everything the driver provisioned, for the scenarios and for
// cleanup.
type fixture struct {
	cli      stileCLI
	run      string // names everything this run made
	app, cc  client
	redirect string
	seeds    []*account // one per worker of the widest step: SSO sessions and refresh chains
	fresh    []*account // one per two-step sign-in: each signs in once, so no TOTP step repeats
	users    []string   // every user created, for cleanup
	mu       sync.Mutex
}

const benchRedirect = "https://bench.invalid/cb" // never fetched: the driver reads the code off the redirect

// provision creates the two clients and seeds+fresh users with TOTP.
// workers bounds the CLI processes run at once (each hashes a password).
func provision(ctx context.Context, cli stileCLI, seeds, fresh, workers int) (*fixture, error) {
	f := &fixture{cli: cli, run: strings.ToLower(rand.Text()[:8]), redirect: benchRedirect}
	var app, cc struct {
		Secret string `json:"client_secret"`
	}
	f.app.ID, f.cc.ID = "bench-app-"+f.run, "bench-cc-"+f.run
	if err := cli.run(ctx, "", &app, "client", "add", "--id", f.app.ID, "--type", "web", "--name", "stile-bench",
		"--redirect-uri", f.redirect, "--grant-type", "authorization_code", "--grant-type", "refresh_token", "--first-party"); err != nil {
		return f, err
	}
	f.app.Secret = app.Secret
	if err := cli.run(ctx, "", &cc, "client", "add", "--id", f.cc.ID, "--type", "web", "--name", "stile-bench machine",
		"--grant-type", "client_credentials", "--scope", "bench:read", "--access-token-format", "opaque"); err != nil {
		return f, err
	}
	f.cc.Secret = cc.Secret
	accts, err := f.addUsers(ctx, seeds+fresh, workers)
	if err != nil {
		return f, err
	}
	f.seeds, f.fresh = accts[:seeds], accts[seeds:]
	return f, nil
}

// addUsers creates n users, each with a password and a TOTP secret.
func (f *fixture) addUsers(ctx context.Context, n, workers int) ([]*account, error) {
	accts := make([]*account, n)
	password := "bench " + rand.Text() // one password: the hash's cost is the same for any
	err := parallel(n, workers, func(i int) error {
		a, err := f.addUser(ctx, fmt.Sprintf("bench-%s-%d", f.run, i), password)
		accts[i] = a
		return err
	})
	return accts, err
}

// parallel runs fn(0..n-1) on at most workers goroutines and returns the
// first error; after one, the remaining indices are skipped.
func parallel(n, workers int, fn func(i int) error) error {
	var (
		next  atomic.Int64
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for range max(workers, 1) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
				}
			}
		})
	}
	wg.Wait()
	return first
}

func (f *fixture) addUser(ctx context.Context, name, password string) (*account, error) {
	if err := f.cli.run(ctx, password+"\n", nil, "user", "add", "--username", name, "--password-stdin"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.users = append(f.users, name)
	f.mu.Unlock()
	var totp struct {
		Secret string `json:"secret"`
	}
	if err := f.cli.run(ctx, "", &totp, "user", "totp", name); err != nil {
		return nil, err
	}
	if totp.Secret == "" {
		return nil, fmt.Errorf("stile user totp %s: no secret in its JSON", name)
	}
	return &account{Username: name, Password: password, TOTPSecret: totp.Secret}, nil
}

// cleanup removes the clients (with their tokens and consents) and
// disables the users, which ends their sessions and revokes their tokens.
// stile has no command that deletes a user (an account is kept for its
// audit trail), so disabled users named bench-<run>-N stay behind; a
// throwaway database (make bench) goes with them. It runs on its own
// context: after Ctrl-C the run's context is already cancelled.
func (f *fixture) cleanup(workers int) error {
	ctx := context.Background()
	var errs []error
	for _, id := range []string{f.app.ID, f.cc.ID} {
		if err := f.cli.run(ctx, "", nil, "client", "remove", id); err != nil && !strings.Contains(err.Error(), "no client") {
			errs = append(errs, err)
		}
	}
	var mu sync.Mutex
	parallel(len(f.users), workers, func(i int) error {
		if err := f.cli.run(ctx, "", nil, "user", "disable", f.users[i]); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		return nil // one failure must not stop the rest of the cleanup
	})
	if len(errs) > 0 {
		return fmt.Errorf("cleanup: %d commands failed, first: %w", len(errs), errs[0])
	}
	return nil
}
