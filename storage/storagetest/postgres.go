// Package storagetest gives tests real databases: a SQLite file in a
// temporary directory, and a database on a real PostgreSQL server — the one
// STILE_TEST_DATABASE_URL names, or a throwaway cluster started once per test
// binary from the machine's PostgreSQL binaries.
//
// A package whose tests use PostgreSQL calls Main from its TestMain, so the
// throwaway cluster is stopped when the tests end.
package storagetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq" // PostgreSQL driver
)

// EnvURL names a PostgreSQL server to test against instead of a throwaway
// cluster. Its user must be allowed to create databases.
const EnvURL = "STILE_TEST_DATABASE_URL"

var (
	pgOnce    sync.Once
	pgServer  *cluster
	pgErr     error
	dbCounter atomic.Int64
)

// Main runs the tests and then stops the throwaway cluster, if one was
// started. Call it from TestMain: os.Exit(storagetest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if pgServer != nil {
		pgServer.stop()
	}
	return code
}

// Postgres returns the URL of a new, empty database on a real PostgreSQL
// server, dropped when the test ends. It fails the test, with a message that
// says what to install, if no server can be had.
func Postgres(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pgServer, pgErr = startServer() })
	if pgErr != nil {
		t.Fatalf("PostgreSQL is needed for this test and is not available: %v", pgErr)
	}
	name := fmt.Sprintf("stile_test_%d_%d", os.Getpid(), dbCounter.Add(1))
	admin, err := sql.Open("postgres", pgServer.url)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("postgres", pgServer.url)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
	})
	u, _ := url.Parse(pgServer.url)
	u.Path = "/" + name
	return u.String()
}

// cluster is a PostgreSQL server: the one from EnvURL, or one this process
// started (dir set) and must stop.
type cluster struct {
	url   string
	dir   string
	bin   string
	owner *syscall.Credential
}

func startServer() (*cluster, error) {
	if u := os.Getenv(EnvURL); u != "" {
		c := &cluster{url: u}
		return c, c.announce("from " + EnvURL)
	}
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	c := &cluster{bin: bin}
	if err := c.start(); err != nil {
		c.stop()
		return nil, err
	}
	return c, c.announce("throwaway cluster in " + c.dir)
}

// announce prints the server version once per test binary, so the test log
// shows what was tested against.
func (c *cluster) announce(where string) error {
	db, err := sql.Open("postgres", c.url)
	if err != nil {
		return err
	}
	defer db.Close()
	var v string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.QueryRowContext(ctx, `SELECT version()`).Scan(&v); err != nil {
		return fmt.Errorf("query server version: %w", err)
	}
	fmt.Printf("storagetest: testing against %s (%s)\n", v, where)
	return nil
}

func findBinaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no initdb on PATH or under /usr/lib/postgresql/*/bin; " +
		"install the server (Debian: apt-get install postgresql) or set " + EnvURL +
		" to a server where the test user can create databases")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func (c *cluster) start() error {
	dir, err := os.MkdirTemp("", "stile-pg-")
	if err != nil {
		return err
	}
	c.dir = dir
	if os.Geteuid() == 0 {
		// initdb refuses to run as root: the cluster belongs to "postgres".
		if err := c.useOwner("postgres"); err != nil {
			return err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "+
		"-c full_page_writes=off -c max_connections=300", port, dir)
	if out, err := c.run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return nil
}

func (c *cluster) useOwner(name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("running as root, the throwaway cluster needs the %q user (Debian: apt-get install postgresql): %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	c.owner = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return os.Chown(c.dir, uid, gid)
}

func (c *cluster) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	if c.owner != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.owner}
	}
	return cmd.CombinedOutput()
}

func (c *cluster) stop() {
	if c.dir == "" {
		return
	}
	c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(c.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
