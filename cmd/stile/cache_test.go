package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// cliProcessEnv makes the test binary run as the stile CLI (TestMain).
const cliProcessEnv = "STILE_TEST_CLI_PROCESS"

// runCLIProcess runs a CLI command against s's database in a process of
// its own, as an operator's `stile client update` beside `stile serve`.
func runCLIProcess(t *testing.T, s *server, args ...string) {
	t.Helper()
	args = append(args, "--database", s.dbURL, "--secret-file", s.keyFile)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), cliProcessEnv+"=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("stile %s (own process): %v\n%s", strings.Join(args, " "), err, out)
	}
}

// authorizeStatus starts an authorization for the public client "cached"
// at base (one instance, not the proxy) with this redirect URI: 302 to the
// login when the URI is registered, 400 when it is not.
func authorizeStatus(t *testing.T, base, redirect string) int {
	t.Helper()
	sum := sha256.Sum256([]byte("a verifier long enough for PKCE, forty-three characters at least"))
	q := url.Values{"client_id": {"cached"}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"s"}, "code_challenge_method": {"S256"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// enforced reports whether base accepts want and refuses old.
func enforced(t *testing.T, base, old, want string) bool {
	return authorizeStatus(t, base, old) == http.StatusBadRequest && authorizeStatus(t, base, want) == http.StatusFound
}

// within polls cond until it holds, failing the test after bound: a
// correctness bound (a change must hold everywhere within a second), not a
// measure of speed.
func within(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// manyAuthorizations lifts the per-address authorization limit: the tests
// poll /authorize.
func manyAuthorizations(c *appConfig) {
	l := op.DefaultLimits
	l.AuthorizePerAddress.Limit = 1 << 20
	c.OPLimits = &l
}

// TestCacheAcrossInstances: a client's redirect URI changed on one
// instance, through its store and then through the CLI, is enforced on the
// other within a second. The instances cache as if each ran in its own
// process and never revalidate during the test, so only PostgreSQL's
// notification can carry the change.
func TestCacheAcrossInstances(t *testing.T) {
	c := startCluster(t, manyAuthorizations, func(c *appConfig) {
		c.CacheRevalidate, c.CacheIsolated = time.Hour, true
	})
	first, second := c.servers[0], c.servers[1]
	const a, b, cc = "https://a.example/cb", "https://b.example/cb", "https://c.example/cb"
	first.addClient(t, &storage.Client{ID: "cached", Name: "Cached", Type: storage.ClientSPA, RedirectURIs: storage.Strings{a}})
	within(t, time.Second, "the new client on the other instance", func() bool { return authorizeStatus(t, second.local, a) == http.StatusFound })
	if got := authorizeStatus(t, second.local, b); got != http.StatusBadRequest {
		t.Fatalf("an unregistered redirect URI: %d, want 400", got)
	}

	if _, err := first.db.UpdateClient(context.Background(), "cached", func(cl *storage.Client) error {
		cl.RedirectURIs = storage.Strings{b}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "a change through the first instance's store, on the second", func() bool { return enforced(t, second.local, a, b) })

	first.stile(t, "client", "update", "cached", "--redirect-uri", cc)
	within(t, time.Second, "a change through the CLI, on both instances", func() bool {
		return enforced(t, second.local, b, cc) && enforced(t, first.local, b, cc)
	})
}

// TestCacheCLIProcessSQLite: on SQLite, `stile client update` in another
// process is enforced by the running server within a second (it checks
// cache_version at least every half second).
func TestCacheCLIProcessSQLite(t *testing.T) {
	s := startServer(t, storagetest.SQLite(t), manyAuthorizations)
	const a, b = "https://a.example/cb", "https://b.example/cb"
	s.addClient(t, &storage.Client{ID: "cached", Name: "Cached", Type: storage.ClientSPA, RedirectURIs: storage.Strings{a}})
	if !enforced(t, s.URL, b, a) {
		t.Fatal("before the change: the registered URI must work and the other be refused")
	}
	runCLIProcess(t, s, "client", "update", "cached", "--redirect-uri", b)
	within(t, time.Second, "the other process's change", func() bool { return enforced(t, s.URL, a, b) })
}

// readCounter counts the clients and users s's store reads from the
// database.
type readCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func countReads(s *server) *readCounter {
	r := &readCounter{counts: map[string]int{}}
	s.db.SetReadHook(func(table string) {
		r.mu.Lock()
		r.counts[table]++
		r.mu.Unlock()
	})
	return r
}

// take returns the counts so far and starts again.
func (r *readCounter) take() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.counts
	r.counts = map[string]int{}
	return out
}

// TestReadsPerRefresh: a refresh reads its user once and its client not
// at all while the client is cached, once after the client changed.
func TestReadsPerRefresh(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t))
	body := f.offline(t)
	reads := countReads(f.s)
	status, body := f.refresh(t, body["refresh_token"].(string), "app", f.secret)
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, body)
	}
	if got := reads.take(); got["users"] != 1 || got["clients"] != 0 {
		t.Fatalf("a refresh with the client cached read %v, want users:1 and no client", got)
	}
	if _, err := f.s.db.UpdateClient(context.Background(), "app", func(c *storage.Client) error {
		c.Name = "Example App, renamed"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	reads.take()
	status, body = f.refresh(t, body["refresh_token"].(string), "app", f.secret)
	if status != http.StatusOK {
		t.Fatalf("refresh after the change: %d %v", status, body)
	}
	if got := reads.take(); got["users"] != 1 || got["clients"] != 1 {
		t.Fatalf("a refresh after the client changed read %v, want users:1 and clients:1", got)
	}
}

// TestDisabledUserRefreshRefused: users are not cached across requests, so
// a user disabled in the store (without anything revoked) is refused at
// their very next refresh, on both databases.
func TestDisabledUserRefreshRefused(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL(t))
			body := f.offline(t)
			status, body := f.refresh(t, body["refresh_token"].(string), "app", f.secret)
			if status != http.StatusOK {
				t.Fatalf("refresh before: %d %v", status, body)
			}
			if _, err := f.s.db.UpdateUser(context.Background(), f.alice.ID, func(u *storage.User) error {
				u.Disabled = true
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			status, refused := f.refresh(t, body["refresh_token"].(string), "app", f.secret)
			if status != http.StatusBadRequest || refused["error"] != "invalid_grant" {
				t.Fatalf("refresh of a disabled user: %d %v, want 400 invalid_grant", status, refused)
			}
		})
	}
}

// TestReadsPerClientCredentials: a client_credentials grant reads its
// client at most once (the library asks for it twice), none while cached,
// and no user.
func TestReadsPerClientCredentials(t *testing.T) {
	f := newCCFixture(t, storagetest.SQLite(t))
	f.token(t, "svc-opaque", "api:read") // fills the cache
	reads := countReads(f.s)
	f.token(t, "svc-opaque", "api:read")
	if got := reads.take(); got["clients"] != 0 || got["users"] != 0 {
		t.Fatalf("a client_credentials grant with the client cached read %v, want nothing", got)
	}
	if _, err := f.s.db.UpdateClient(context.Background(), "svc-opaque", func(c *storage.Client) error {
		c.Name = "renamed"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	reads.take()
	f.token(t, "svc-opaque", "api:read")
	if got := reads.take(); got["clients"] != 1 || got["users"] != 0 {
		t.Fatalf("a client_credentials grant after the client changed read %v, want clients:1", got)
	}
}
