package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestDBPoolFlags: serve refuses pool sizes it cannot work with, from a
// flag or from the environment, and sizes the pool it is given: on
// PostgreSQL the one pool, on SQLite the read pool beside its one writer.
func TestDBPoolFlags(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--db-max-open-conns", "1"}, "at least 2"},
		{nil, []string{"--db-max-open-conns", "-4"}, "at least 2"},
		{map[string]string{"STILE_DB_MAX_OPEN_CONNS": "1"}, nil, "at least 2"},
		{nil, []string{"--db-max-open-conns", "4", "--db-max-idle-conns", "5"}, "--db-max-idle-conns"},
		{nil, []string{"--db-conn-max-lifetime", "-1s"}, "must not be negative"},
	} {
		err := run(context.Background(), append([]string{"serve"}, tc.args...), func(k string) string { return tc.env[k] },
			strings.NewReader(""), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v %v: %v, want a refusal with %q", tc.env, tc.args, err, tc.want)
		}
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			addrs := serveInBackground(t, "--listen", "127.0.0.1:0", "--database", d.URL(t), "--secret-file", poolTestKey(t),
				"--db-max-open-conns", "6", "--db-max-idle-conns", "3", "--db-conn-max-lifetime", "0")
			s := scrapeMetrics(t, "http://"+addrs["main"]+"/metrics")
			want := map[string]float64{"shared": 6}
			if d.Name == string(storage.SQLite) {
				want = map[string]float64{"write": 1, "read": 6}
			}
			for pool, n := range want {
				if v := s.value("go_sql_max_open_connections", "db_name", d.Name, "pool", pool); v != n {
					t.Errorf("%s pool: max open %v, want %v", pool, v, n)
				}
			}
		})
	}
}

// poolTestKey writes a master key file: PostgreSQL needs one given.
func poolTestKey(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stile.key")
	if err := os.WriteFile(p, []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
