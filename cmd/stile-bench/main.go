package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stile-id/stile/login"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "stile-bench:", err)
		os.Exit(1)
	}
}

// options are the driver's flags.
type options struct {
	issuer, database, secretFile, bin string
	serverPID                         int
	procRoot                          string
	requests, signins, workers        int
	duration                          time.Duration
	concurrency                       []int
	argon2                            login.Argon2id
	jsonPath, label                   string
	launch                            bool
	alg, cpus                         string
	summary                           bool
}

func parseFlags(args []string, stderr io.Writer) (*options, []string, error) {
	o := &options{}
	fs := flag.NewFlagSet("stile-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.issuer, "issuer", "", "the running server's issuer URL (loopback only)")
	fs.StringVar(&o.database, "database", "", "the server's --database, for provisioning through the stile CLI; with -launch, 'sqlite' means a new file in a temporary directory")
	fs.StringVar(&o.secretFile, "secret-file", "", "the server's --secret-file (with SQLite: default the database path + .key)")
	fs.StringVar(&o.bin, "stile", "stile", "the stile binary: runs the CLI for provisioning and, with -launch, the server")
	fs.IntVar(&o.serverPID, "server-pid", 0, "the server's pid, for CPU and RSS (default: the process listening on the issuer's port)")
	fs.StringVar(&o.procRoot, "proc", "/proc", "where procfs is mounted")
	fs.IntVar(&o.requests, "requests", 500, "requests per step (scenario × concurrency)")
	fs.IntVar(&o.signins, "signin-requests", 30, "two-step sign-ins per step: each needs a fresh user (argon2id-bound, provisioning costs one hash per user)")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "time cap per step")
	conc := fs.String("concurrency", "1,8,32", "comma-separated concurrencies")
	argon := fs.String("argon2id", argon2String(login.DefaultArgon2id), "the server's argon2id parameters, for the in-process primitive (stile's default)")
	fs.IntVar(&o.workers, "provision-workers", 2, "stile CLI commands run at once while provisioning")
	fs.StringVar(&o.jsonPath, "json", "", "write the report as JSON to this file")
	fs.StringVar(&o.label, "label", "", "a name for the run in the report (default: database and algorithm)")
	fs.BoolVar(&o.launch, "launch", false, "start stile serve on a free loopback port, time its start, drive it and stop it")
	fs.StringVar(&o.alg, "alg", "", "with -launch: serve --signing-alg")
	fs.StringVar(&o.cpus, "server-cpus", "", "with -launch: pin the server to these CPUs with taskset, e.g. 1")
	fs.BoolVar(&o.summary, "summary", false, "print one table and all targets for the JSON reports given as arguments")
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	var err error
	if o.concurrency, err = parseConcurrency(*conc); err != nil {
		return nil, nil, err
	}
	if o.argon2, err = parseArgon2(*argon); err != nil {
		return nil, nil, err
	}
	return o, fs.Args(), o.validate(fs.Args())
}

func (o *options) validate(rest []string) error {
	var errs []error
	switch {
	case o.summary:
		if len(rest) == 0 {
			errs = append(errs, errors.New("-summary: give the JSON reports as arguments"))
		}
		return errors.Join(errs...)
	case len(rest) > 0:
		errs = append(errs, fmt.Errorf("unexpected arguments %q", rest))
	}
	if o.database == "" {
		errs = append(errs, errors.New("-database is required: users and clients are provisioned through the stile CLI on it"))
	}
	if o.launch == (o.issuer != "") {
		errs = append(errs, errors.New("give either -issuer (a running server) or -launch"))
	}
	if !o.launch && (o.alg != "" || o.cpus != "") {
		errs = append(errs, errors.New("-alg and -server-cpus need -launch"))
	}
	if o.requests < 1 || o.signins < 1 || o.duration <= 0 || o.workers < 1 {
		errs = append(errs, errors.New("-requests, -signin-requests, -provision-workers and -duration must be positive"))
	}
	return errors.Join(errs...)
}

func parseConcurrency(s string) ([]int, error) {
	var cs []int
	for f := range strings.SplitSeq(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 || c > 1024 {
			return nil, fmt.Errorf("-concurrency %q: want counts between 1 and 1024, comma-separated", s)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, rest, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if o.summary {
		var runs []*report
		for _, p := range rest {
			r, err := readReport(p)
			if err != nil {
				return err
			}
			runs = append(runs, r)
		}
		printSummary(stdout, runs)
		return nil
	}
	var r *report
	if o.launch {
		r, err = launchAndDrive(ctx, o, stderr)
	} else {
		r, err = drive(ctx, o, probe{root: o.procRoot, pid: o.serverPID}, nil, stderr)
	}
	if err != nil {
		return err
	}
	r.printTable(stdout)
	if o.jsonPath != "" {
		return r.writeJSON(o.jsonPath)
	}
	return nil
}
