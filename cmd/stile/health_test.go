package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stile-id/stile/storage/storagetest"
)

// health runs `stile health` in-process with the environment env.
func health(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"health"}, args...), func(k string) string { return env[k] }, nil, &out, &errOut)
	return out.String(), err
}

// TestHealth: `stile health` against a real server says ready while the
// server is, and not ready with the reason when its database is gone (503
// from /readyz), when nothing listens, and when nothing answers in time.
func TestHealth(t *testing.T) {
	s := startServer(t, storagetest.SQLite(t))

	ready := s.URL + "/readyz"
	out, err := health(t, nil, "--url", ready)
	if err != nil || !strings.Contains(out, "200 OK") {
		t.Fatalf("ready server: %q, %v", out, err)
	}
	// As its own process: exit 0 and one line.
	if code, out := healthProcess(t, ready); code != 0 || out != ready+": 200 OK\n" {
		t.Fatalf("ready server, own process: exit %d, %q", code, out)
	}
	// With no --url it asks 127.0.0.1 at the port of STILE_LISTEN, as in
	// the container image.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	if out, err := health(t, map[string]string{"STILE_LISTEN": ":" + port}); err != nil || !strings.Contains(out, "127.0.0.1:"+port+"/readyz") {
		t.Fatalf("default URL from STILE_LISTEN=:%s: %q, %v", port, out, err)
	}
	// A redirect is not followed, even to a ready server: the URL asked
	// is not the one that answered.
	redirect := httptest.NewServer(http.RedirectHandler(ready, http.StatusFound))
	defer redirect.Close()
	if _, err := health(t, nil, "--url", redirect.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "answered 302 Found") {
		t.Fatalf("a redirect counted as healthy: %v", err)
	}

	// The database goes away: /readyz answers 503 and says so.
	s.db.Close()
	_, err = health(t, nil, "--url", ready)
	if err == nil || !strings.Contains(err.Error(), "503 Service Unavailable: not ready: the database does not answer") {
		t.Fatalf("503: %v", err)
	}
	want := "stile: not healthy: " + ready + " answered 503 Service Unavailable: not ready: the database does not answer\n"
	if code, out := healthProcess(t, ready); code != 1 || out != want {
		t.Fatalf("503, own process: exit %d, %q; want exit 1, %q", code, out, want)
	}

	// Nothing listens on the port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/readyz"
	ln.Close()
	if _, err := health(t, nil, "--url", closed); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("stopped server: %v", err)
	}

	// Something accepts the connection and never answers.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	if _, err := health(t, nil, "--url", "http://"+hung.Addr().String()+"/readyz", "--timeout", "200ms"); err == nil ||
		!strings.Contains(err.Error(), "did not answer within 200ms") {
		t.Fatalf("hung server: %v", err)
	}
}

// healthProcess runs `stile health --url url` as a process of its own, as
// a container engine does, and returns its exit code and output.
func healthProcess(t *testing.T, url string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "health", "--url", url)
	cmd.Env = append(os.Environ(), cliProcessEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return cmd.ProcessState.ExitCode(), out.String()
}
