package main

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// settleAfterRun is how long the driver waits after the last step before it
// reads the RSS a server keeps: longer than stile's hashing pool takes to
// give argon2's memory back once idle (2 s, login.Pool.FreeIdle).
const settleAfterRun = 3 * time.Second

// drive provisions, signs the seed users in, measures the primitives and
// runs every scenario at every concurrency against o.issuer. info, for a
// server the driver started, gets the RSS after the run.
func drive(ctx context.Context, o *options, pr probe, info *serverInfo, log io.Writer) (*report, error) {
	u, err := checkLoopback(o.issuer, net.LookupHost)
	if err != nil {
		return nil, err
	}
	if pr.pid == 0 {
		if pr.pid, err = serverPID(pr.root, issuerPort(u.Port(), u.Scheme)); err != nil {
			fmt.Fprintf(log, "stile-bench: no server CPU or RSS in this report: %v\n", err)
		}
	}
	maxC := slices.Max(o.concurrency)
	cli := stileCLI{bin: o.bin, database: o.database, secretFile: o.secretFile}
	fresh := 0 // one user per two-step sign-in: at least one per worker in each step
	for _, c := range o.concurrency {
		fresh += max(o.signins, c)
	}
	fmt.Fprintf(log, "provisioning %d users and 2 clients through %s …\n", maxC+fresh, o.bin)
	fx, err := provision(ctx, cli, maxC, fresh, o.workers)
	defer func() {
		if cerr := fx.cleanup(o.workers); cerr != nil {
			fmt.Fprintln(log, "stile-bench:", cerr)
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	r, seeds, err := prepare(ctx, o, fx, maxC, log)
	if err != nil {
		return nil, err
	}
	if info != nil {
		r.Server = info
	}
	for _, sc := range r.driver.scenarios(seeds, o.requests, o.signins) {
		for _, c := range o.concurrency {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted: %w", ctx.Err())
			}
			s := runStep(ctx, sc, c, o.duration, pr)
			fmt.Fprintf(log, "%-18s c=%-3d %6d req %4d errors %8.1f req/s\n", s.Scenario, c, s.Requests, s.Errors, s.PerSecond)
			r.Steps = append(r.Steps, s)
		}
	}
	if m, ok := pr.memory(); ok && info != nil {
		info.RSSAfter, info.HWMAfter = m.RSS, m.HWM
		fmt.Fprintf(log, "waiting %s for the server to settle …\n", settleAfterRun)
		select {
		case <-time.After(settleAfterRun):
		case <-ctx.Done():
		}
		if m, ok := pr.memory(); ok {
			info.RSSSettled = m.RSS
		}
	}
	r.summarise()
	r.evaluate()
	return &r.report, nil
}

// prepare discovers the endpoints, signs the seed users in and measures
// the primitives of the algorithm the server actually signs with.
func prepare(ctx context.Context, o *options, fx *fixture, maxC int, log io.Writer) (*runState, []*seed, error) {
	d, err := newDriver(o.issuer, fx, maxC)
	if err != nil {
		return nil, nil, err
	}
	seeds, err := d.seedSessions(ctx)
	if err != nil {
		return nil, nil, err
	}
	alg, bits, err := d.serverAlg(seeds[0].idToken)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(log, "the server signs with %s; measuring the primitives …\n", alg)
	prim, err := measurePrimitives(alg, bits, o.argon2)
	if err != nil {
		return nil, nil, err
	}
	r := &runState{report: report{Label: o.label, Issuer: o.issuer, Database: dialect(o.database), Alg: alg,
		Started: time.Now().UTC(), Primitives: prim}, driver: d}
	if r.Label == "" {
		r.Label = r.Database + " " + alg
	}
	return r, seeds, nil
}

// runState is a report being filled, with the driver that fills it.
type runState struct {
	report
	driver *driver
}

// serverAlg reads the algorithm off an ID token's header and, for RSA,
// the key size off the published key it names, so the in-process signature
// is the one the server makes.
func (d *driver) serverAlg(idToken string) (string, int, error) {
	var hdr struct{ Alg, Kid string }
	h, err := base64.RawURLEncoding.DecodeString(strings.SplitN(idToken, ".", 2)[0])
	if err != nil || json.Unmarshal(h, &hdr) != nil || hdr.Alg == "" {
		return "", 0, fmt.Errorf("the seed sign-in's ID token has no readable header")
	}
	if hdr.Alg != "RS256" {
		return hdr.Alg, 0, nil
	}
	body, err := d.get(d.ep.JWKS, "")
	if err != nil {
		return "", 0, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return "", 0, fmt.Errorf("JWKS: %w", err)
	}
	for _, k := range set.Key(hdr.Kid) {
		if pub, ok := k.Key.(*rsa.PublicKey); ok {
			return hdr.Alg, pub.N.BitLen(), nil
		}
	}
	return hdr.Alg, 0, nil
}

func issuerPort(port, scheme string) int {
	if p, err := strconv.Atoi(port); err == nil {
		return p
	}
	if scheme == "https" {
		return 443
	}
	return 80
}

// launchAndDrive starts the server twice — once on the fresh database
// (migrations, the first signing key), then again as an operator's restart,
// whose ready time and idle RSS the report gives — drives it and stops it.
func launchAndDrive(ctx context.Context, o *options, log io.Writer) (*report, error) {
	lo := launchOptions{bin: o.bin, database: o.database, secretFile: o.secretFile, alg: o.alg, cpus: o.cpus}
	if err := prepareLaunch(&lo); err != nil {
		return nil, fmt.Errorf("-launch: %w", err)
	}
	defer os.RemoveAll(lo.dir)
	s, first, err := start(ctx, lo)
	if err != nil {
		return nil, err
	}
	s.stop()
	s, ready, err := start(ctx, lo)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	pr := probe{root: o.procRoot, pid: s.cmd.Process.Pid}
	idle, _ := pr.memory()
	info := &serverInfo{PID: pr.pid, FirstReadyMs: ms(first), ReadyMs: ms(ready), IdleRSS: idle.RSS}
	fmt.Fprintf(log, "stile serve (pid %d) on %s: ready in %.0f ms (fresh database: %.0f ms), idle RSS %s\n",
		pr.pid, s.issuer, info.ReadyMs, info.FirstReadyMs, mib(idle.RSS))
	do := *o
	do.issuer, do.database, do.secretFile = s.issuer, lo.database, lo.secretFile
	r, err := drive(ctx, &do, pr, info, log)
	if err != nil {
		return nil, err
	}
	return r, nil
}
