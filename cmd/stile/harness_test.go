package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/internal/clocktest"
	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the CLI in a process of its own
	// (runCLIProcess): a writer the server's process hears nothing from.
	if os.Getenv(cliProcessEnv) == "1" {
		if err := run(context.Background(), os.Args[1:], func(string) string { return "" }, os.Stdin, os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString("stile: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	// The OpenID library logs through the default logger; each test server
	// has its own log, shown when its test fails.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(storagetest.Main(m))
}

// server is a real stile on a loopback port, over a real database, with a
// clock the test steps.
type server struct {
	URL      string // the issuer
	local    string // where this instance listens: the issuer, unless several run behind a proxy
	dbURL    string
	keyFile  string // the master key, for running the CLI against this server's database
	db       *storage.DB
	master   *keys.Master
	sealer   *keys.Sealer
	clock    *clocktest.Clock
	hasher   *countingHasher
	logs     *syncBuffer
	maintain func(context.Context) // one background maintenance pass
	settle   func()                // waits for passwordless codes sent in the background
}

// startServer starts stile over the database at dbURL. The clock starts at
// the wall clock's now, so tokens the library stamps with the real time and
// expiries stile computes from the test clock agree until a test steps it.
func startServer(t *testing.T, dbURL string, opts ...func(*appConfig)) *server {
	t.Helper()
	return launch(t, dbURL, launchOptions{app: opts})
}

// loopback is the tests' own address range.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// trustLoopback makes the tests' own address a trusted proxy, so one test
// plays clients at many addresses with X-Forwarded-For.
func trustLoopback(c *appConfig) { c.TrustedProxies = loopback }

// launchOptions vary how a test server runs.
type launchOptions struct {
	app  []func(*appConfig)
	tls  *tls.Config                     // serve https with this certificate
	wrap func(http.Handler) http.Handler // put in front of stile, e.g. to break it on purpose
	host string                          // the issuer's host name instead of 127.0.0.1, e.g. localhost
	// Several instances behind one address share the issuer (the proxy's
	// URL), the master key (32 raw bytes) and the clock.
	issuer    string
	masterKey []byte
	clock     *clocktest.Clock
}

func launch(t *testing.T, dbURL string, o launchOptions) *server {
	t.Helper()
	ctx := context.Background()
	s := &server{clock: o.clock, logs: &syncBuffer{}, dbURL: dbURL}
	if s.clock == nil {
		s.clock = clocktest.New(time.Now())
	}
	s.db = storagetest.Open(t, dbURL, storage.WithClock(s.clock.Now))
	s.hasher = &countingHasher{Hasher: login.DefaultArgon2id}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if o.host != "" {
		addr = net.JoinHostPort(o.host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	s.URL = "http://" + addr
	if o.tls != nil {
		ln = tls.NewListener(ln, o.tls)
		s.URL = "https://" + addr
	}
	s.local = s.URL
	if o.issuer != "" {
		s.URL = o.issuer
	}
	raw := o.masterKey
	if raw == nil {
		raw = make([]byte, 32)
		rand.Read(raw)
	}
	master, err := keys.NewMaster(raw)
	if err != nil {
		t.Fatal(err)
	}
	s.keyFile = filepath.Join(t.TempDir(), "master.key")
	os.WriteFile(s.keyFile, []byte(base64.StdEncoding.EncodeToString(raw)), 0o600)
	log := slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := appConfig{Issuer: s.URL, DB: s.db, DatabaseURL: dbURL, Master: master, Now: s.clock.Now, Log: log, Hasher: s.hasher}
	for _, f := range o.app {
		f(&cfg)
	}
	s.master, s.sealer = cfg.Master, keys.NewSealer(cfg.Master)
	if err := s.master.Check(ctx, s.db); err != nil {
		t.Fatal(err)
	}
	a, err := newApp(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.maintain, s.settle = a.maintain, a.settle
	handler := a.handler
	if o.wrap != nil {
		handler = o.wrap(handler)
	}
	srv := &http.Server{Handler: handler, ErrorLog: stdlog.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})
	return s
}

// startServerWithKey starts stile with the master key in keyFile, as
// `stile serve --secret-file` would.
func startServerWithKey(t *testing.T, dbURL, keyFile string) *server {
	t.Helper()
	m, err := keys.LoadMaster(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, dbURL, func(c *appConfig) { c.Master = m })
	s.keyFile = keyFile
	return s
}

// stile runs a CLI command against the server's database, as an operator
// would while the server runs.
func (s *server) stile(t *testing.T, args ...string) string {
	t.Helper()
	return s.stileIn(t, "", args...)
}

// stileIn runs a CLI command with stdin.
func (s *server) stileIn(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--database", s.dbURL, "--secret-file", s.keyFile)
	if err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(stdin), &out, &errOut); err != nil {
		t.Fatalf("stile %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// user is a seeded account and what a test needs to sign in as it.
type user struct {
	*storage.User
	password   string
	totpSecret string
}

func (s *server) addUser(t *testing.T, name string, withTOTP bool) *user {
	t.Helper()
	ctx := context.Background()
	u := &user{User: &storage.User{Username: name, Email: name + "@example.com",
		Roles: storage.Strings{"editor", "reviewer"}, Attributes: storage.Attributes{"plan": "pro", "seats": float64(3)}},
		password: "correct horse " + name}
	hash, err := login.DefaultArgon2id.Hash(u.password)
	if err != nil {
		t.Fatal(err)
	}
	u.PasswordHash = hash
	if err := s.db.CreateUser(ctx, u.User); err != nil {
		t.Fatal(err)
	}
	if withTOTP {
		e, err := account.EnrollTOTP(ctx, s.db, s.sealer, "stile test", u.User)
		if err != nil {
			t.Fatal(err)
		}
		u.totpSecret = e.Secret
	}
	return u
}

// code is the user's TOTP code at the server's current time, as the
// user's authenticator app would show it.
func (s *server) code(t *testing.T, u *user) string {
	t.Helper()
	c, err := login.TOTPCode(u.totpSecret, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// addClient registers a client and returns its secret ("" for public ones).
func (s *server) addClient(t *testing.T, c *storage.Client) string {
	t.Helper()
	var secret string
	if c.Type == storage.ClientWeb {
		secret = op.NewClientSecret()
		c.SecretHash = op.SecretDigest(op.SecretKey(s.master), secret)
		if c.AuthMethod == "" {
			c.AuthMethod = storage.AuthSecretBasic
		}
	} else {
		c.AuthMethod = storage.AuthNone
		c.RequirePKCE = true
	}
	if err := s.db.CreateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return secret
}

// countingHasher counts password verifications: each is one argon2id run.
type countingHasher struct {
	login.Hasher
	verifies atomic.Int64
}

func (c *countingHasher) Verify(encoded, password string) (bool, error) {
	c.verifies.Add(1)
	return c.Hasher.Verify(encoded, password)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ io.Writer = (*syncBuffer)(nil)

func jsonInto(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
}
