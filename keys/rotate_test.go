package keys_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// sealV1 seals as stile did before values named their key: 0x01 || nonce
// || AES-256-GCM under HKDF(key, "stile/seal"), written here independently
// of the package.
func sealV1(t *testing.T, key, plaintext, aad []byte) []byte {
	t.Helper()
	k, err := hkdf.Key(sha256.New, key, nil, "stile/seal", 32)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(k)
	aead, _ := cipher.NewGCM(block)
	out := make([]byte, 1+aead.NonceSize())
	out[0] = 1
	rand.Read(out[1:])
	return aead.Seal(out, out[1:], plaintext, aad)
}

func TestSealerKeyIDs(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	m1, _ := keys.NewMaster(k1)
	m2, _ := keys.NewMaster(k2)
	aad := []byte("table.col:row1")
	sealed, _ := keys.NewSealer(m1).Seal([]byte("secret"), aad)
	if sealed[0] != 2 || keys.SealedKeyID(sealed) != m1.ID() || m1.ID() == m2.ID() {
		t.Fatalf("value names key %q (version %d), want %s", keys.SealedKeyID(sealed), sealed[0], m1.ID())
	}
	if _, err := keys.NewSealer(m2).Open(sealed, aad); !errors.Is(err, keys.ErrUnseal) {
		t.Fatalf("another key opened it: %v", err)
	}
	// The key ID is authenticated: another key's ID in the header does not
	// open, even with the right key behind it.
	forged := bytes.Clone(sealed)
	forged[1] ^= 1
	if _, err := keys.NewSealer(m1).Open(forged, aad); !errors.Is(err, keys.ErrUnseal) {
		t.Fatalf("a value with a changed key ID opened: %v", err)
	}

	v1 := sealV1(t, k1, []byte("from before"), aad)
	if got, err := keys.NewSealer(m1).Open(v1, aad); err != nil || string(got) != "from before" {
		t.Fatalf("version-1 value: %q, %v", got, err)
	}
	if keys.SealedKeyID(v1) != "" {
		t.Fatal("a version-1 value names a key")
	}
	if _, err := keys.NewSealer(m2).Open(v1, aad); !errors.Is(err, keys.ErrUnseal) {
		t.Fatalf("version-1 value opened with another key: %v", err)
	}
	if _, err := keys.NewSealer(m1).Open(v1, []byte("table.col:row2")); !errors.Is(err, keys.ErrUnseal) {
		t.Fatalf("version-1 value opened with another row's AAD: %v", err)
	}
}

func TestMasterRotation(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { testMasterRotation(t, storagetest.Open(t, d.URL(t))) })
	}
}

// checked is a Master as an instance holds it after start.
func checked(t *testing.T, raw []byte, db *storage.DB) *keys.Master {
	t.Helper()
	m, _ := keys.NewMaster(raw)
	if err := m.Check(ctx, db); err != nil {
		t.Fatalf("check: %v", err)
	}
	return m
}

func testMasterRotation(t *testing.T, db *storage.DB) {
	k0, k1, k2 := make([]byte, 32), make([]byte, 32), make([]byte, 32)
	rand.Read(k0)
	rand.Read(k1)
	rand.Read(k2)
	first := checked(t, k0, db)
	root := first.Derive("session-cookie")
	// Three users with TOTP: one sealed the old way (version 1), two now.
	var users []string
	for i, name := range []string{"v1", "a", "b"} {
		u := &storage.User{Username: name}
		if err := db.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		sealed, _ := keys.NewSealer(first).Seal([]byte("secret-"+name), storage.TOTPSecretAAD(u.ID))
		if i == 0 {
			sealed = sealV1(t, k0, []byte("secret-"+name), storage.TOTPSecretAAD(u.ID))
		}
		if err := db.SetTOTP(ctx, u.ID, sealed); err != nil {
			t.Fatal(err)
		}
		users = append(users, u.ID)
	}
	opens := func(t *testing.T, m *keys.Master) {
		t.Helper()
		for i, id := range users {
			tp, _ := db.GetTOTP(ctx, id)
			got, err := keys.NewSealer(m).Open(tp.SecretSealed, storage.TOTPSecretAAD(id))
			if err != nil || string(got) != "secret-"+[]string{"v1", "a", "b"}[i] {
				t.Fatalf("user %d's secret: %q, %v", i, got, err)
			}
		}
	}
	running := checked(t, k0, db) // an instance started before the rotation
	unaware := checked(t, k0, db) // another, that seals or opens nothing until the change is over
	if _, _, err := keys.FinishRotation(ctx, db); !errors.Is(err, keys.ErrNoChange) {
		t.Fatalf("finish with no change: %v", err)
	}

	next, _ := keys.NewMaster(k1)
	if _, err := keys.StartRotation(ctx, db, first, first); err == nil {
		t.Fatal("rotation to the current key accepted")
	}
	if resumed, err := keys.StartRotation(ctx, db, first, next); err != nil || resumed {
		t.Fatalf("start: resumed %v, %v", resumed, err)
	}
	other, _ := keys.NewMaster(k2)
	if _, err := keys.StartRotation(ctx, db, first, other); !errors.Is(err, keys.ErrChangeOpen) {
		t.Fatalf("a second change to another key: %v", err)
	}
	// During the change both files are accepted, open everything and derive
	// the same MAC keys; a third key is not.
	during := checked(t, k1, db)
	opens(t, during)
	if !bytes.Equal(during.Derive("session-cookie"), root) {
		t.Fatal("the new key derives other MAC keys")
	}
	if err := other.Check(ctx, db); !errors.Is(err, keys.ErrWrongMaster) {
		t.Fatalf("an unrelated key during the change: %v", err)
	}
	if _, _, err := keys.FinishRotation(ctx, db); !errors.Is(err, keys.ErrOldValuesRemain) {
		t.Fatalf("finish before the re-seal: %v", err)
	}

	// The instance started with the old file meets a value sealed with the
	// new key after the first batch, learns the key from the database, and
	// seals with the new key from then on.
	batches := 0
	done, err := keys.Reseal(ctx, db, first, 1, func(keys.Resealed) {
		if batches++; batches == 1 {
			opens(t, running)
		}
	})
	if err != nil || done[0].Kind != "TOTP secrets" || done[0].Resealed != 3 || batches < 3 {
		t.Fatalf("re-seal: %+v after %d batches, %v", done, batches, err)
	}
	opens(t, running)
	if s, _ := keys.NewSealer(running).Seal([]byte("x"), []byte("y")); keys.SealedKeyID(s) != next.ID() {
		t.Fatalf("the old instance seals with %s, want the new key %s", keys.SealedKeyID(s), next.ID())
	}
	again, err := keys.Reseal(ctx, db, during, 1, nil)
	if err != nil || again[0].Resealed != 0 || again[0].Already != 3 {
		t.Fatalf("second re-seal: %+v, %v", again, err)
	}

	if _, _, err := keys.FinishRotation(ctx, db); err != nil {
		t.Fatalf("finish: %v", err)
	}
	old, _ := keys.NewMaster(k0)
	if err := old.Check(ctx, db); !errors.Is(err, keys.ErrRetiredMaster) {
		t.Fatalf("old key after finish: %v", err)
	}
	after := checked(t, k1, db)
	opens(t, after)
	if !bytes.Equal(after.Derive("session-cookie"), root) {
		t.Fatal("after the change the MAC keys differ")
	}
	// An instance never restarted that did not learn the new key in time
	// refuses to seal with a retired key (nobody could open the value); one
	// that did learn it keeps serving.
	if _, err := keys.NewSealer(unaware).Seal([]byte("x"), []byte("y")); !errors.Is(err, keys.ErrRetiredMaster) {
		t.Fatalf("sealing with a retired key: %v", err)
	}
	opens(t, running)
	for _, col := range storage.SealedColumns {
		vs, err := db.ListSealed(ctx, col, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if keys.SealedKeyID(v.Sealed) != next.ID() {
				t.Fatalf("%s %s sealed with %q", col.Table, v.Row, keys.SealedKeyID(v.Sealed))
			}
		}
	}

	// A second rotation keeps the same root.
	third, _ := keys.NewMaster(k2)
	if _, err := keys.StartRotation(ctx, db, after, third); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Reseal(ctx, db, after, 10, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := keys.FinishRotation(ctx, db); err != nil {
		t.Fatal(err)
	}
	last := checked(t, k2, db)
	opens(t, last)
	if !bytes.Equal(last.Derive("session-cookie"), root) {
		t.Fatal("the second rotation changed the MAC keys")
	}
	if _, err := keys.StartRotation(ctx, db, last, old); err == nil {
		t.Fatal("a retired key accepted as the next one")
	}
}
