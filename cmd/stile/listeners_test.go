package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// TestMetricsAndDebugListeners runs `stile serve` with --metrics-listen and
// --debug-listen on loopback: /metrics is served on its own address and no
// longer on the main one (whose /healthz still answers), pprof only on the
// debug address. A debug address that is not loopback is refused at start.
func TestMetricsAndDebugListeners(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "[::]:6060", "192.0.2.1:6060", "example.com:6060"} {
		err := run(context.Background(), []string{"serve", "--debug-listen", addr}, func(string) string { return "" },
			strings.NewReader(""), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("--debug-listen %s: %v, want a refusal that says loopback", addr, err)
		}
	}
	err := run(context.Background(), []string{"serve"}, func(k string) string {
		return map[string]string{"STILE_DEBUG_LISTEN": "0.0.0.0:6060"}[k]
	}, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("STILE_DEBUG_LISTEN=0.0.0.0:6060: %v, want a refusal", err)
	}

	addrs := serveInBackground(t, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--debug-listen", "127.0.0.1:0")
	main, metricsAt, debugAt := "http://"+addrs["main"], "http://"+addrs["--metrics-listen"], "http://"+addrs["--debug-listen"]
	for _, c := range []struct {
		url    string
		status int
	}{
		{main + "/healthz", http.StatusOK},
		{main + "/metrics", http.StatusNotFound},
		{main + "/debug/pprof/", http.StatusNotFound},
		{metricsAt + "/debug/pprof/", http.StatusNotFound},
		{debugAt + "/metrics", http.StatusNotFound},
		{debugAt + "/debug/pprof/", http.StatusOK},
	} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("GET %s: %d, want %d", c.url, resp.StatusCode, c.status)
		}
	}
	s := scrapeMetrics(t, metricsAt+"/metrics")
	if got := s.value("stile_http_requests_total", "route", "/healthz", "code", "200"); got != 1 {
		t.Errorf("the metrics listener counts %v requests to the main /healthz, want 1", got)
	}
}

// serveInBackground runs `stile serve` on a fresh SQLite database until
// the test ends, and returns the addresses it listens on, from its log:
// "main" and each side listener's flag.
func serveInBackground(t *testing.T, args ...string) map[string]string {
	t.Helper()
	prev := slog.Default() // serve makes its log the default one
	ctx, cancel := context.WithCancel(context.Background())
	log := &listenWatch{ready: make(chan struct{})}
	done := make(chan error, 1)
	db := "sqlite:" + filepath.Join(t.TempDir(), "stile.db")
	go func() {
		done <- run(ctx, append([]string{"serve", "--database", db}, args...), func(string) string { return "" },
			strings.NewReader(""), io.Discard, log)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		slog.SetDefault(prev)
	})
	select {
	case <-log.ready:
	case err := <-done:
		t.Fatalf("serve %v: %v\n%s", args, err, log.String())
	}
	return log.addresses()
}

// listenWatch is serve's stderr: it closes ready once the main listener
// says it listens (after every side listener).
type listenWatch struct {
	mu    sync.Mutex
	buf   strings.Builder
	ready chan struct{}
	once  sync.Once
}

func (w *listenWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), `msg="stile is listening"`) {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

func (w *listenWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

var (
	sideAddress = regexp.MustCompile(`msg="side listener is listening" flag=(\S+) address=(\S+)`)
	mainAddress = regexp.MustCompile(`msg="stile is listening" .*address=(\S+)`)
)

func (w *listenWatch) addresses() map[string]string {
	out := map[string]string{}
	text := w.String()
	for _, m := range sideAddress.FindAllStringSubmatch(text, -1) {
		out[m[1]] = m[2]
	}
	if m := mainAddress.FindStringSubmatch(text); m != nil {
		out["main"] = m[1]
	}
	return out
}
