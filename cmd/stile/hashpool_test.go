package main

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/stile-id/stile/login"
)

func TestHashPoolFlags(t *testing.T) {
	derived := login.PoolSize(login.DefaultArgon2id, login.DefaultPoolMemory)
	for _, c := range []struct {
		args     []string
		env      map[string]string
		size     int
		wait     time.Duration
		mem      int64
		problems string // "" : valid
	}{
		{size: derived, wait: time.Second, mem: 512 << 20},
		{args: []string{"--password-hash-memory", "1GiB", "--password-hash-wait", "250ms"}, size: login.PoolSize(login.DefaultArgon2id, 1<<30),
			wait: 250 * time.Millisecond, mem: 1 << 30},
		{args: []string{"--password-hash-concurrency", "8"}, size: 8, wait: time.Second, mem: 512 << 20},
		{env: map[string]string{"STILE_PASSWORD_HASH_CONCURRENCY": "3", "STILE_PASSWORD_HASH_MEMORY": "192MiB", "STILE_PASSWORD_HASH_WAIT": "2s"},
			size: 3, wait: 2 * time.Second, mem: 192 << 20},
		{args: []string{"--password-hash-memory", "64MiB"}, size: 1, wait: time.Second, mem: 64 << 20},
		{args: []string{"--password-hash-memory", "lots"}, problems: "--password-hash-memory"},
		{args: []string{"--password-hash-memory", "32MiB"}, problems: "less than one password hash needs (64 MiB)"},
		{args: []string{"--password-hash-memory", "2PiB"}, problems: "more than a petabyte"},
		{args: []string{"--password-hash-concurrency", "9"}, problems: "needs 576 MiB, more than --password-hash-memory 512MiB"},
		{args: []string{"--password-hash-concurrency", "-1"}, problems: "between 0 (derive) and 4096"},
		{args: []string{"--password-hash-wait", "0s"}, problems: "--password-hash-wait"},
		{args: []string{"--password-hash-wait", "1m"}, problems: "at most 30s"},
	} {
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		var o hashPoolOptions
		o.register(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		if err := applyEnv(fs, func(k string) string { return c.env[k] }); err != nil {
			t.Fatal(err)
		}
		p, err := o.pool()
		switch {
		case c.problems != "" && (err == nil || !strings.Contains(err.Error(), c.problems)):
			t.Errorf("%v %v: %v, want an error saying %q", c.args, c.env, err, c.problems)
		case c.problems == "" && err != nil:
			t.Errorf("%v %v: %v", c.args, c.env, err)
		case c.problems == "" && (p.size() != c.size || p.Wait != c.wait || p.Memory != c.mem):
			t.Errorf("%v %v: size %d wait %s memory %d, want %d %s %d", c.args, c.env, p.size(), p.Wait, p.Memory, c.size, c.wait, c.mem)
		}
	}
}

// TestServeRefusesABadPool checks the flags reach serve's validation: it
// stops before opening anything.
func TestServeRefusesABadPool(t *testing.T) {
	var out, errOut strings.Builder
	err := run(t.Context(), []string{"serve", "--password-hash-concurrency", "100"}, func(string) string { return "" },
		strings.NewReader(""), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--password-hash-concurrency 100 needs 6.3 GiB") {
		t.Fatalf("serve with a pool over its budget: %v", err)
	}
}
