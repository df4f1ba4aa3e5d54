package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestHSTS: an https issuer gets Strict-Transport-Security on every
// response (stile behind a TLS-terminating proxy here: it serves http
// itself), an http issuer none.
func TestHSTS(t *testing.T) {
	for _, c := range []struct {
		issuer string
		want   string
	}{
		{"https://id.example.com", "max-age=31536000"},
		{"", ""}, // the harness's own http://127.0.0.1:port
	} {
		s := launch(t, storagetest.SQLite(t), launchOptions{issuer: c.issuer})
		for _, path := range []string{"/healthz", "/.well-known/openid-configuration", "/no-such-page", "/oauth/token"} {
			resp, _ := get(t, s.local+path)
			if got := resp.Header.Get("Strict-Transport-Security"); got != c.want {
				t.Errorf("issuer %q, GET %s (%d): Strict-Transport-Security %q, want %q", s.URL, path, resp.StatusCode, got, c.want)
			}
		}
	}
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{16}$`)

// TestRequestIDs runs `stile serve --log-format json`: every response has
// an X-Request-ID, every line is JSON, and the lines logged while a request
// is handled carry its ID — a failing /readyz's warning and its access
// line alike. An X-Request-ID from a client that is not a trusted proxy is
// replaced; a trusted proxy's well-formed one is kept, a malformed one
// replaced.
func TestRequestIDs(t *testing.T) {
	dbURL := storagetest.SQLite(t)
	s := serveJSON(t, "--database", dbURL)
	s.ready(t)
	base := "http://" + s.addr

	resp, _ := get(t, base+"/readyz")
	okID := resp.Header.Get("X-Request-ID")
	if resp.StatusCode != http.StatusOK || !generatedID.MatchString(okID) {
		t.Fatalf("/readyz: %d, X-Request-ID %q", resp.StatusCode, okID)
	}
	restore := retireSigningKeys(t, rawDB(t, dbURL))
	var failing *http.Response
	var body string
	within(t, 30*time.Second, "/readyz says no without an active key", func() bool {
		failing, body = get(t, base+"/readyz")
		return failing.StatusCode == http.StatusServiceUnavailable
	})
	id := failing.Header.Get("X-Request-ID")
	if !strings.Contains(body, "no active signing key") || !generatedID.MatchString(id) || id == okID {
		t.Fatalf("/readyz without a key: %q, X-Request-ID %q (the earlier one %q)", body, id, okID)
	}
	within(t, 10*time.Second, "the request's log lines", func() bool { return len(linesOf(s.log, id)) >= 2 })
	var warned, accessed bool
	for _, m := range linesOf(s.log, id) {
		warned = warned || m["level"] == "WARN" && m["msg"] == "not ready: no active signing key"
		accessed = accessed || m["msg"] == "http" && m["path"] == "/readyz" && m["status"] == float64(503)
	}
	if !warned || !accessed {
		t.Errorf("lines with request_id %s: %v, want the warning and the access line", id, linesOf(s.log, id))
	}
	if other := linesOf(s.log, okID); len(other) != 1 || other[0]["status"] != float64(200) {
		t.Errorf("the first /readyz's lines: %v, want its access line alone", other)
	}
	restore()
	within(t, 30*time.Second, "/readyz ready again with the key back", func() bool {
		resp, _ := get(t, base+"/readyz")
		return resp.StatusCode == http.StatusOK
	})

	// Not a trusted proxy: the caller's ID is replaced.
	resp, _ = get(t, base+"/healthz", "X-Request-ID", "caller-chosen-1")
	if got := resp.Header.Get("X-Request-ID"); !generatedID.MatchString(got) {
		t.Errorf("an untrusted caller's X-Request-ID: answered with %q, want a new one", got)
	}
	if len(linesOf(s.log, "caller-chosen-1")) > 0 {
		t.Error("an untrusted caller's X-Request-ID reached the log")
	}

	// Behind a trusted proxy (the test's loopback address).
	p := serveJSON(t, "--database", storagetest.SQLite(t), "--trusted-proxies", "127.0.0.1/32")
	p.ready(t)
	for _, c := range []struct {
		sent string
		kept bool
	}{
		{"edge-7f3a.b_C", true},
		{"3f2b1c9e-8d4a-4f6b-9c1d-2e3f4a5b6c7d", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"has space", false},
		{"semi;colon", false},
	} {
		resp, _ := get(t, "http://"+p.addr+"/healthz", "X-Request-ID", c.sent)
		got := resp.Header.Get("X-Request-ID")
		if c.kept && got != c.sent || !c.kept && !generatedID.MatchString(got) {
			t.Errorf("a trusted proxy's X-Request-ID %q: answered with %q (kept: %v)", c.sent, got, c.kept)
		}
		if c.kept {
			within(t, 10*time.Second, "the proxy's ID in the access line", func() bool { return len(linesOf(p.log, c.sent)) == 1 })
		}
	}
	s.log.checkAllJSON(t)
	p.log.checkAllJSON(t)

	err := run(context.Background(), []string{"serve", "--log-format", "xml"}, func(string) string { return "" },
		strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "json or text") {
		t.Errorf("--log-format xml: %v, want a refusal", err)
	}
}

func linesOf(l *jsonLog, id string) []map[string]any {
	return l.find(func(m map[string]any) bool { return m["request_id"] == id })
}

// TestReadyzNoActiveKey: /readyz is 503 while no signing key is active,
// 200 with one, on both databases; /healthz stays 200 throughout.
func TestReadyzNoActiveKey(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			url := d.URL(t)
			s := startServer(t, url)
			status := func(path string) (int, string) {
				resp, body := get(t, s.URL+path)
				return resp.StatusCode, body
			}
			if code, body := status("/readyz"); code != http.StatusOK {
				t.Fatalf("/readyz with a key: %d %q", code, body)
			}
			restore := retireSigningKeys(t, rawDB(t, url))
			s.clock.Advance(2 * time.Minute) // past the key cache
			within(t, 10*time.Second, "/readyz 503", func() bool { code, _ := status("/readyz"); return code == 503 })
			if _, body := status("/readyz"); !strings.Contains(body, "no active signing key") {
				t.Errorf("/readyz without a key says %q", body)
			}
			if code, _ := status("/healthz"); code != http.StatusOK {
				t.Errorf("/healthz without a key: %d", code)
			}
			restore()
			s.clock.Advance(2 * time.Minute)
			within(t, 10*time.Second, "/readyz 200 again", func() bool { code, _ := status("/readyz"); return code == 200 })
		})
	}
}

// TestReadyzWhileMigrating holds PostgreSQL's migration lock, as another
// instance migrating would: serve listens at once, /healthz is 200,
// /readyz 503 and says why, every other path 503 with Retry-After; once
// the lock is released serve migrates and /readyz turns 200.
func TestReadyzWhileMigrating(t *testing.T) {
	url := storagetest.Postgres(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if _, err := keys.GenerateMaster(keyFile); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, url)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const gooseLock = 4097083626 // goose's lock.DefaultLockID, which storage.Migrate takes
	if _, err := conn.ExecContext(context.Background(), "SELECT pg_advisory_lock($1)", gooseLock); err != nil {
		t.Fatal(err)
	}
	s := serveJSON(t, "--database", url, "--secret-file", keyFile)
	base := "http://" + s.addr
	if resp, body := get(t, base+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz while migrating: %d %q", resp.StatusCode, body)
	}
	resp, body := get(t, base+"/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "migrating the database") {
		t.Errorf("/readyz while migrating: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Request-ID") == "" {
		t.Error("no X-Request-ID while starting")
	}
	resp, _ = get(t, base+"/.well-known/openid-configuration")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("discovery while migrating: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if len(s.log.msg("stile is listening")) > 0 {
		t.Fatal("serve went on while another instance held the migration lock")
	}
	if _, err := conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", gooseLock); err != nil {
		t.Fatal(err)
	}
	s.ready(t)
	if resp, body := get(t, base+"/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz once migrated: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, base+"/.well-known/openid-configuration"); resp.StatusCode != http.StatusOK {
		t.Errorf("discovery once migrated: %d", resp.StatusCode)
	}
	s.log.checkAllJSON(t)
}

// TestGracefulShutdown: a POST whose body the client is still sending when
// the shutdown starts completes with the status the same request gets
// otherwise, no new connection is accepted meanwhile, and serve returns
// after it. With a request that never finishes, serve cuts it off at
// --shutdown-timeout and says how many it cut.
func TestGracefulShutdown(t *testing.T) {
	body := "grant_type=client_credentials&client_id=nobody&client_secret=wrong-secret-0123456789"
	// Expect: 100-continue shows when the handler runs: the server sends
	// "100 Continue" as the handler starts reading the body.
	head := func(addr string) string {
		return fmt.Sprintf("POST /oauth/token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
			"Content-Length: %d\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n", addr, len(body))
	}
	dial := func(t *testing.T, addr string) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	status := func(t *testing.T, r *bufio.Reader) int {
		t.Helper()
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("read the response: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// started sends the headers and the first bytes of the body, and
	// returns once the handler reads it.
	started := func(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
		t.Helper()
		c := dial(t, addr)
		r := bufio.NewReader(c)
		io.WriteString(c, head(addr))
		if got := status(t, r); got != http.StatusContinue {
			t.Fatalf("before the body: %d, want 100 Continue", got)
		}
		io.WriteString(c, body[:10])
		return c, r
	}

	t.Run("InFlightFinishes", func(t *testing.T) {
		s := serveJSON(t, "--database", storagetest.SQLite(t), "--shutdown-timeout", "1m")
		s.ready(t)
		control, r := started(t, s.addr)
		io.WriteString(control, body[10:])
		want := status(t, r)
		if want != http.StatusUnauthorized && want != http.StatusBadRequest {
			t.Fatalf("the control request: %d, want the token endpoint's refusal", want)
		}

		c, r := started(t, s.addr)
		s.cancel() // what SIGINT/SIGTERM do
		shut := s.log.waitMsg(t, "shutting down")
		if shut["in_flight"] != float64(1) {
			t.Errorf("shutting down with %v requests in flight, want 1", shut["in_flight"])
		}
		within(t, 10*time.Second, "new connections refused", func() bool {
			n, err := net.Dial("tcp", s.addr)
			if err == nil {
				n.Close()
			}
			return err != nil
		})
		select {
		case err := <-s.done:
			t.Fatalf("serve returned (%v) with a request in flight", err)
		default:
		}
		io.WriteString(c, body[10:])
		if got := status(t, r); got != want {
			t.Errorf("the request in flight at shutdown: %d, want %d", got, want)
		}
		if err := s.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
		if len(s.log.msg("every request finished")) != 1 || len(s.log.msg("shutdown timeout")) != 0 {
			t.Errorf("shutdown log: %s", s.log.String())
		}
	})

	t.Run("CutOffAtTimeout", func(t *testing.T) {
		s := serveJSON(t, "--database", storagetest.SQLite(t), "--shutdown-timeout", "300ms")
		s.ready(t)
		started(t, s.addr) // and never the rest
		if err := s.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
		cut := s.log.msg("shutdown timeout")
		if len(cut) != 1 || cut[0]["requests"] != float64(1) {
			t.Errorf("cut-off lines %v, want one saying 1 request", cut)
		}
	})
}
