package keys_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

var ctx = context.Background()

func TestMasterFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stile.key")
	if _, err := keys.LoadMaster(path); !errors.Is(err, keys.ErrNoMasterFile) {
		t.Fatalf("missing file: err = %v, want ErrNoMasterFile", err)
	}
	m, err := keys.GenerateMaster(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated file mode %o, want 0600", fi.Mode().Perm())
	}
	if _, err := keys.GenerateMaster(path); err == nil {
		t.Fatal("GenerateMaster overwrote an existing key file")
	}
	loaded, err := keys.LoadMaster(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(loaded.Derive("x"), m.Derive("x")) {
		t.Fatal("loaded key differs from the generated one")
	}
	if bytes.Equal(m.Derive("a"), m.Derive("b")) {
		t.Fatal("two purposes derived the same sub-key")
	}

	os.Chmod(path, 0o644)
	if _, err := keys.LoadMaster(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key file: err = %v, want a chmod hint", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("not base64!"), 0o600)
	if _, err := keys.LoadMaster(path); err == nil {
		t.Fatal("garbage key file accepted")
	}
}

func TestSealer(t *testing.T) {
	m1, _ := keys.NewMaster(bytes.Repeat([]byte{1}, 32))
	m2, _ := keys.NewMaster(bytes.Repeat([]byte{2}, 32))
	s := keys.NewSealer(m1)
	sealed, err := s.Seal([]byte("secret"), []byte("table.col:row1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("secret")) {
		t.Fatal("plaintext visible in sealed value")
	}
	got, err := s.Open(sealed, []byte("table.col:row1"))
	if err != nil || string(got) != "secret" {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := s.Open(sealed, []byte("table.col:row2")); !errors.Is(err, keys.ErrUnseal) {
		t.Fatalf("opened with another row's AAD: %v", err)
	}
	if _, err := keys.NewSealer(m2).Open(sealed, []byte("table.col:row1")); !errors.Is(err, keys.ErrUnseal) {
		t.Fatalf("opened with another master key: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := s.Open(sealed, []byte("table.col:row1")); !errors.Is(err, keys.ErrUnseal) {
		t.Fatalf("opened a tampered value: %v", err)
	}
}

func TestKeys(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			t.Run("MasterCheck", func(t *testing.T) { testMasterCheck(t, storagetest.Open(t, d.URL(t))) })
			t.Run("SigningKeyOnce", func(t *testing.T) { testSigningKeyOnce(t, d.URL(t)) })
			t.Run("SwitchOnce", func(t *testing.T) { testSwitchOnce(t, d.URL(t)) })
		})
	}
}

func testMasterCheck(t *testing.T, db *storage.DB) {
	right, _ := keys.NewMaster(bytes.Repeat([]byte{7}, 32))
	wrong, _ := keys.NewMaster(bytes.Repeat([]byte{8}, 32))
	if has, err := keys.HasCheck(ctx, db); err != nil || has {
		t.Fatalf("fresh database has a check value: %v, %v", has, err)
	}
	if err := right.Check(ctx, db); err != nil {
		t.Fatalf("first check records the key: %v", err)
	}
	if has, _ := keys.HasCheck(ctx, db); !has {
		t.Fatal("check value not recorded")
	}
	if err := right.Check(ctx, db); err != nil {
		t.Fatalf("same key again: %v", err)
	}
	if err := wrong.Check(ctx, db); !errors.Is(err, keys.ErrWrongMaster) {
		t.Fatalf("wrong key: err = %v, want ErrWrongMaster", err)
	}
}

// testSigningKeyOnce starts several managers, as several instances would,
// on one empty database at once: they must end up signing with one key.
func testSigningKeyOnce(t *testing.T, url string) {
	master, _ := keys.NewMaster(bytes.Repeat([]byte{9}, 32))
	const instances = 4
	managers := make([]*keys.Manager, instances)
	for i := range managers {
		managers[i] = keys.NewManager(storagetest.Open(t, url), keys.NewSealer(master), time.Now, 10*time.Minute)
	}
	var wg sync.WaitGroup
	for _, m := range managers {
		wg.Go(func() {
			if err := m.Ensure(ctx, ""); err != nil {
				t.Errorf("ensure: %v", err)
			}
		})
	}
	wg.Wait()
	first, err := managers[0].Active(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first.Algorithm != "RS256" || first.ID == "" {
		t.Fatalf("active key %s %s, want RS256 with a kid", first.ID, first.Algorithm)
	}
	if _, ok := first.Key.(*rsa.PrivateKey); !ok {
		t.Fatalf("key type %T, want RSA", first.Key)
	}
	for _, m := range managers[1:] {
		s, err := m.Active(ctx)
		if err != nil || s.ID != first.ID {
			t.Fatalf("instances disagree on the signing key: %s vs %s (%v)", s.ID, first.ID, err)
		}
	}
	pub, err := managers[0].Published(ctx)
	if err != nil || len(pub) != 1 || pub[0].ID != first.ID {
		t.Fatalf("published = %+v, %v; want exactly the active key", pub, err)
	}
	if pub[0].Key.(*rsa.PublicKey).N.Cmp(first.Key.Public().(*rsa.PublicKey).N) != 0 {
		t.Fatal("published key is not the active key's public half")
	}
}

// testSwitchOnce: several instances start together with --signing-alg ES256
// on a database that signs with RS256: exactly one ES256 key is published,
// as the next default, and RS256 keeps signing until it is due.
func testSwitchOnce(t *testing.T, url string) {
	master, _ := keys.NewMaster(bytes.Repeat([]byte{9}, 32))
	first := keys.NewManager(storagetest.Open(t, url), keys.NewSealer(master), time.Now, 10*time.Minute)
	if err := first.Ensure(ctx, ""); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		m := keys.NewManager(storagetest.Open(t, url), keys.NewSealer(master), time.Now, 10*time.Minute)
		wg.Go(func() {
			if err := m.Ensure(ctx, "ES256"); err != nil {
				t.Errorf("ensure ES256: %v", err)
			}
		})
	}
	wg.Wait()
	stored, err := storagetest.Open(t, url).ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var next, active []string
	for _, k := range stored {
		switch k.State {
		case storage.KeyNext:
			next = append(next, k.Algorithm)
		case storage.KeyActive:
			active = append(active, k.Algorithm)
		}
	}
	if len(next) != 1 || next[0] != "ES256" || len(active) != 1 || active[0] != "RS256" {
		t.Fatalf("after four instances switched: next %v, active %v; want one next ES256 beside the active RS256", next, active)
	}
	if s, _ := first.Active(ctx); s == nil || s.Algorithm != "RS256" {
		t.Fatalf("signs with %v before the switch is due, want RS256", s)
	}
	if _, err := first.Rotate(ctx, "RS512", time.Hour); err == nil || !strings.Contains(err.Error(), "use one of") {
		t.Fatalf("rotate to RS512: %v, want a refusal naming the algorithms", err)
	}
}
