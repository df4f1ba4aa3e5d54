package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// jsonLog collects the JSON lines a stile writes to its stderr and fails
// on any line that is not a JSON object: with --log-format json every line
// must be one, the OpenID library's too.
type jsonLog struct {
	mu      sync.Mutex
	partial strings.Builder
	lines   []map[string]any
	raw     []string
	bad     []string
}

func (l *jsonLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial.Write(p)
	text := l.partial.String()
	for {
		i := strings.IndexByte(text, '\n')
		if i < 0 {
			break
		}
		line := text[:i]
		text = text[i+1:]
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			l.bad = append(l.bad, line)
			continue
		}
		l.lines = append(l.lines, m)
		l.raw = append(l.raw, line)
	}
	l.partial.Reset()
	l.partial.WriteString(text)
	return len(p), nil
}

// find returns the lines for which match holds.
func (l *jsonLog) find(match func(map[string]any) bool) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, m := range l.lines {
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}

func (l *jsonLog) msg(prefix string) []map[string]any {
	return l.find(func(m map[string]any) bool { s, _ := m["msg"].(string); return strings.HasPrefix(s, prefix) })
}

func (l *jsonLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.raw, "\n") + "\nNOT JSON:\n" + strings.Join(l.bad, "\n")
}

func (l *jsonLog) checkAllJSON(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bad) > 0 {
		t.Errorf("log lines that are not JSON objects:\n%s", strings.Join(l.bad, "\n"))
	}
}

// waitMsg waits until a line whose msg starts with prefix was logged.
func (l *jsonLog) waitMsg(t *testing.T, prefix string) map[string]any {
	t.Helper()
	var got []map[string]any
	within(t, 60*time.Second, "log line "+prefix, func() bool { got = l.msg(prefix); return len(got) > 0 })
	return got[0]
}

// serving is `stile serve --log-format json` running in the test's process.
type serving struct {
	log    *jsonLog
	addr   string // where it listens, from its "stile is starting" line
	cancel context.CancelFunc
	done   chan error
}

// serveJSON runs `stile serve` in-process with JSON logs on a loopback
// port and returns as soon as it listens (before it is ready).
func serveJSON(t *testing.T, args ...string) *serving {
	t.Helper()
	prev := slog.Default()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{log: &jsonLog{}, cancel: cancel, done: make(chan error, 1)}
	args = append([]string{"serve", "--log-format", "json", "--listen", "127.0.0.1:0"}, args...)
	go func() {
		s.done <- run(ctx, args, func(string) string { return "" }, strings.NewReader(""), io.Discard, s.log)
	}()
	t.Cleanup(func() {
		cancel()
		<-s.done
		slog.SetDefault(prev)
		if t.Failed() {
			t.Logf("serve log:\n%s", s.log.String())
		}
	})
	within(t, 60*time.Second, "stile is starting", func() bool {
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("serve %v: %v\n%s", args, err, s.log.String())
		default:
		}
		return len(s.log.msg("stile is starting")) > 0
	})
	s.addr, _ = s.log.msg("stile is starting")[0]["address"].(string)
	return s
}

// ready waits for the application to be swapped in.
func (s *serving) ready(t *testing.T) {
	t.Helper()
	s.log.waitMsg(t, "stile is listening")
}

// stop ends serve as SIGINT/SIGTERM would and returns what serve returned.
func (s *serving) stop() error {
	s.cancel()
	err := <-s.done
	s.done <- err
	return err
}

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// rawDB opens the database at url beside stile, to change what stile's
// own code would not (retire every signing key, hold the migration lock).
func rawDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	driver, dsn := "postgres", url
	if path, ok := strings.CutPrefix(url, "sqlite:"); ok {
		driver, dsn = "sqlite", "file:"+path+"?_pragma=busy_timeout(5000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// retireSigningKeys leaves the database without an active signing key
// (keys not yet active are retired too, so none is promoted); restore
// undoes it.
func retireSigningKeys(t *testing.T, db *sql.DB) (restore func()) {
	t.Helper()
	var ids []string
	rows, err := db.Query(`SELECT id FROM signing_keys WHERE state = 'active'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) == 0 {
		t.Fatal("no active signing key to retire")
	}
	if _, err := db.Exec(`UPDATE signing_keys SET state = 'retired', retired_at = CURRENT_TIMESTAMP WHERE state <> 'retired'`); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		for _, id := range ids {
			if _, err := db.Exec(`UPDATE signing_keys SET state = 'active', retired_at = NULL WHERE id = '` + id + `'`); err != nil {
				t.Fatal(err)
			}
		}
	}
}
