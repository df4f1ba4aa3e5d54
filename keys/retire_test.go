package keys_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestRetireUnpinned: the key kept for clients that pin an algorithm other
// than the default's signs while one of them pins it, and is retired (still
// published, no longer signing or advertised) once the last pin is gone. A
// client pinned again gets a new key.
func TestRetireUnpinned(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storagetest.Open(t, d.URL(t))
			master, _ := keys.NewMaster(bytes.Repeat([]byte{9}, 32))
			m := keys.NewManager(db, keys.NewSealer(master), time.Now, 10*time.Minute)
			if err := m.Ensure(ctx, ""); err != nil {
				t.Fatal(err)
			}
			pin := func(id, alg string) {
				t.Helper()
				if _, err := db.UpdateClient(ctx, id, func(c *storage.Client) error { c.SigningAlg = alg; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range []string{"one", "two"} {
				if err := db.CreateClient(ctx, &storage.Client{ID: id, Type: storage.ClientSPA, AuthMethod: storage.AuthNone,
					RequirePKCE: true, RedirectURIs: storage.Strings{"https://app.example/cb"}, SigningAlg: storage.AlgES256}); err != nil {
					t.Fatal(err)
				}
			}
			pinned, err := m.For(ctx, storage.AlgES256)
			if err != nil {
				t.Fatal(err)
			}
			algs := func() []string {
				t.Helper()
				a, err := m.Algorithms(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return a
			}
			pin("one", "")
			if _, err := m.Promote(ctx); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(algs(), storage.AlgES256) {
				t.Fatalf("with one client still pinning ES256 the algorithms are %v", algs())
			}
			pin("two", "")
			if _, err := m.Promote(ctx); err != nil {
				t.Fatal(err)
			}
			if got := algs(); !slices.Equal(got, []string{storage.AlgRS256}) {
				t.Fatalf("after the last pin was removed the algorithms are %v, want RS256 alone", got)
			}
			pub, err := m.Published(ctx)
			if err != nil || !slices.ContainsFunc(pub, func(k keys.PublicKey) bool { return k.ID == pinned.ID }) {
				t.Fatalf("the retired pinned key must stay published for its tokens: %v %v", pub, err)
			}
			pin("two", storage.AlgES256)
			again, err := m.For(ctx, storage.AlgES256)
			if err != nil || again.ID == pinned.ID {
				t.Fatalf("pinned again: key %v (%v), want a new one", again, err)
			}
		})
	}
}
