package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchServeFlags are the serve flags a benchmark needs, and why. Every
// request of the driver comes from 127.0.0.1, so the per-address limits
// that stop one attacker would stop the benchmark after a few dozen
// sign-ins; lockouts never arise (every guess is right). They only raise
// limits: no factor is weakened, argon2id keeps its parameters.
var benchServeFlags = []string{
	"--authorize-rate", "1000000/1m", // one stored auth request per sign-in; cannot be 0
	"--token-rate", "0/1m", // every token, introspection call from one address
	"--password-rate", "0/1m", "--code-rate", "0/1m", // one address signs in thousands of users
	// c=32 sign-ins queue for the hashing pool (two slots on one core): the
	// default 1 s wait would shed most of them with 503, which is the pool
	// doing its job; the benchmark measures what a sign-in costs instead.
	"--password-hash-wait", "10s",
}

// server is a stile serve the driver started and must stop.
type server struct {
	cmd    *exec.Cmd
	issuer string
	dir    string
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, once done
}

// launchOptions say how to start the server.
type launchOptions struct {
	bin, database, secretFile, alg, cpus string
	dir                                  string // for the SQLite file and the log
}

// prepareLaunch turns -database sqlite into a file in a temporary
// directory, and gives PostgreSQL a fresh master key file.
func prepareLaunch(o *launchOptions) error {
	dir, err := os.MkdirTemp("", "stile-bench-")
	if err != nil {
		return err
	}
	o.dir = dir
	if o.database == "sqlite" {
		o.database = "sqlite:" + filepath.Join(dir, "stile.db")
		return nil
	}
	if o.secretFile == "" {
		key := make([]byte, 32)
		rand.Read(key)
		o.secretFile = filepath.Join(dir, "stile.key")
		return os.WriteFile(o.secretFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
	}
	return nil
}

// start runs stile serve on a free loopback port, pinned with taskset to
// o.cpus if given, in its own process group (a Ctrl-C meant for the driver
// must not stop it before the cleanup), and waits until /readyz answers.
func start(ctx context.Context, o launchOptions) (*server, time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	issuer := "http://127.0.0.1:" + strconv.Itoa(port)
	args := []string{"serve", "--database", o.database, "--listen", "127.0.0.1:" + strconv.Itoa(port), "--issuer", issuer}
	if o.secretFile != "" {
		args = append(args, "--secret-file", o.secretFile)
	}
	if o.alg != "" {
		args = append(args, "--signing-alg", o.alg)
	}
	args = append(args, benchServeFlags...)
	name := o.bin
	if o.cpus != "" {
		name, args = "taskset", append([]string{"-c", o.cpus, o.bin}, args...) // taskset execs: same pid
	}
	logf, err := os.OpenFile(filepath.Join(o.dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, 0, err
	}
	defer logf.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{cmd: cmd, issuer: issuer, dir: o.dir, done: make(chan struct{})}
	go func() { s.err = cmd.Wait(); close(s.done) }()
	if err := waitReady(ctx, s); err != nil {
		s.stop()
		return nil, 0, fmt.Errorf("%w (log: %s)", err, filepath.Join(o.dir, "server.log"))
	}
	return s, time.Since(t0), nil
}

// waitReady polls /readyz every millisecond: the driver is timing the
// start, so the poll interval bounds the error of that figure.
func waitReady(ctx context.Context, s *server) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(s.issuer + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("stile serve exited before it was ready: %v", s.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return errors.New("stile serve was not ready within 60s")
}

// stop asks the server to shut down and kills it if it does not.
func (s *server) stop() {
	if s == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// dialect names the database kind of a --database value.
func dialect(database string) string {
	if strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://") {
		return "postgres"
	}
	return "sqlite"
}
