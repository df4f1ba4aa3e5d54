package main

import (
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildStile builds the stile binary the driver execs, as make bench does.
func buildStile(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stile")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/stile-id/stile/cmd/stile").CombinedOutput()
	if err != nil {
		t.Fatalf("go build stile: %v\n%s", err, out)
	}
	return bin
}

var scenarioNames = []string{"discovery", "jwks", "client_credentials", "userinfo", "introspection", "refresh", "silent_sso", "signin"}

// checkReport: every scenario at every concurrency, each request done and
// none failed. It says nothing about speed.
func checkReport(t *testing.T, path string, concurrencies []int, requests, signins int) *report {
	t.Helper()
	r, err := readReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != len(scenarioNames)*len(concurrencies) {
		t.Fatalf("%d steps, want %d scenarios × %d concurrencies", len(r.Steps), len(scenarioNames), len(concurrencies))
	}
	for i, s := range r.Steps {
		name, c := scenarioNames[i/len(concurrencies)], concurrencies[i%len(concurrencies)]
		want := requests
		if name == "signin" {
			want = max(signins, c)
		}
		if s.Scenario != name || s.Concurrency != c || s.Requests != want || s.Errors != 0 || s.CPUPerReq == nil {
			t.Errorf("step %d = %s c=%d: %d requests, %d errors (%s), CPU measured %v; want %s c=%d, %d requests, none failed, CPU measured",
				i, s.Scenario, s.Concurrency, s.Requests, s.Errors, s.FirstError, s.CPUPerReq != nil, name, c, want)
		}
	}
	if r.Alg != "RS256" || r.Primitives.SignCPUms <= 0 || r.Primitives.Argon2CPUms <= 0 || len(r.Targets) == 0 {
		t.Errorf("alg %q, primitives %+v, %d targets; want RS256 (a new database's default), both measured, targets", r.Alg, r.Primitives, len(r.Targets))
	}
	if s := r.scenario("signin"); s == nil || s.Cost != (cost{Signatures: 2, Hashes: 1}) || s.Overhead == nil {
		t.Errorf("signin summary %+v: want 2 signatures (ID token, JWT access token) and 1 argon2id, with a ratio", s)
	}
	if s := r.scenario("client_credentials"); s == nil || s.Cost != (cost{}) || s.Overhead != nil || s.CPUPerReq == nil {
		t.Errorf("client_credentials summary %+v: an opaque token signs nothing, so CPU per request and no ratio", s)
	}
	return r
}

// TestDriveRunningServer drives a stile serve the test started, on a
// SQLite file, as an operator would point the driver at theirs: the pid
// is found from the listening socket, and afterwards the clients are gone
// and the users disabled.
func TestDriveRunningServer(t *testing.T) {
	bin := buildStile(t)
	lo := launchOptions{bin: bin, database: "sqlite"}
	if err := prepareLaunch(&lo); err != nil {
		t.Fatal(err)
	}
	s, _, err := start(context.Background(), lo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	// The refusal first, beside the run that works.
	if err := run(context.Background(), []string{"-issuer", "http://192.0.2.1:8080", "-database", lo.database, "-stile", bin},
		io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "not a loopback") {
		t.Fatalf("a non-loopback issuer: err = %v, want refused", err)
	}
	out := filepath.Join(t.TempDir(), "r.json")
	var table strings.Builder
	err = run(context.Background(), []string{"-issuer", s.issuer, "-database", lo.database, "-stile", bin,
		"-requests", "4", "-signin-requests", "2", "-concurrency", "1,3", "-json", out}, &table, io.Discard)
	if err != nil {
		t.Fatalf("stile-bench: %v", err)
	}
	checkReport(t, out, []int{1, 3}, 4, 2)
	for _, name := range scenarioNames {
		if !strings.Contains(table.String(), name) {
			t.Errorf("the table has no row for %s:\n%s", name, table.String())
		}
	}
	cli := stileCLI{bin: bin, database: lo.database}
	var clients []struct{ ID string }
	var users []struct {
		Username string
		Disabled bool
	}
	if err := cli.run(context.Background(), "", &clients, "client", "list"); err != nil {
		t.Fatal(err)
	}
	if err := cli.run(context.Background(), "", &users, "user", "list"); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		t.Errorf("client %s left behind", c.ID)
	}
	if len(users) != 3+2+3 { // a seed per worker of the widest step, a fresh user per sign-in (at least one per worker)
		t.Errorf("%d users were provisioned, want 8", len(users))
	}
	for _, u := range users {
		if !strings.HasPrefix(u.Username, "bench-") || !u.Disabled {
			t.Errorf("user %s: disabled %v after the run, want a disabled bench- user", u.Username, u.Disabled)
		}
	}
}

// TestLaunch: with -launch the driver starts the server itself, twice
// (the fresh database, then a restart), and reports its start and memory.
func TestLaunch(t *testing.T) {
	bin := buildStile(t)
	out := filepath.Join(t.TempDir(), "r.json")
	err := run(context.Background(), []string{"-launch", "-database", "sqlite", "-stile", bin,
		"-requests", "2", "-signin-requests", "1", "-concurrency", "2", "-json", out}, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("stile-bench -launch: %v", err)
	}
	r := checkReport(t, out, []int{2}, 2, 1)
	if s := r.Server; s == nil || s.ReadyMs <= 0 || s.FirstReadyMs <= 0 || s.IdleRSS <= 0 || s.RSSAfter <= 0 || s.RSSSettled <= 0 || s.HWMAfter < s.RSSAfter {
		t.Fatalf("server info %+v: want both start times, idle and final RSS, a peak at least the final", r.Server)
	}
}
