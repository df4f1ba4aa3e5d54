package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestRotateMaster replaces the master key with `stile keys rotate-master`
// while an instance started with the old key file keeps serving: a user
// with TOTP signs in there before, between every two re-sealed batches,
// and after; an instance started with the new file serves the same users,
// sessions, refresh tokens and client secret; --finish is refused while a
// value is still under the old key and succeeds once it is re-sealed;
// after it the old file is refused and every sealed row names the new key.
func TestRotateMaster(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { testRotateMaster(t, d.URL(t)) })
	}
}

// stileRun runs a CLI command in-process and returns its output and error.
func stileRun(dbURL, keyFile string, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	args = append(args, "--database", dbURL, "--secret-file", keyFile)
	err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
	return out.String() + errOut.String(), err
}

func testRotateMaster(t *testing.T, dbURL string) {
	ctx := context.Background()
	f := newFixture(t, dbURL) // the instance started with the old key file
	old := f.s
	oldKey := old.keyFile
	for _, name := range []string{"bob", "carol"} {
		old.addUser(t, name, true)
	}
	signInOld := func(t *testing.T, when string) {
		t.Helper()
		f.nextStep()
		az := f.rp.authorize()
		if _, err := f.rp.exchange(f.signIn(t, newBrowser(t, old), az, f.alice), az.verifier); err != nil {
			t.Fatalf("%s: exchange at the old instance: %v", when, err)
		}
	}
	signInOld(t, "before")
	// A browser with an SSO session and a refresh token from before.
	b := newBrowser(t, old)
	f.nextStep()
	az := f.rp.authorize("scope", "openid offline_access")
	before := f.tokens(t, f.signIn(t, b, az, f.alice), az)

	newKey := filepath.Join(t.TempDir(), "new.key")
	batches := 0
	resealBatchDone = func() { batches++; signInOld(t, "between batches") }
	t.Cleanup(func() { resealBatchDone = nil })
	out := old.stile(t, "keys", "rotate-master", "--new-secret-file", newKey, "--generate", "--batch-size", "1")
	resealBatchDone = nil
	if batches < 4 || !strings.Contains(out, "TOTP secrets:") || !strings.Contains(out, "3 re-sealed") ||
		!strings.Contains(out, "rotate-master --finish") {
		t.Fatalf("rotate-master after %d batches:\n%s", batches, out)
	}
	if fi, err := os.Stat(newKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new key file: %v %v", fi, err)
	}
	if out, err := stileRun(dbURL, oldKey, "keys", "rotate-master", "--new-secret-file", newKey, "--generate"); err == nil ||
		!strings.Contains(err.Error(), "never overwrites") {
		t.Fatalf("--generate over an existing file: %v\n%s", err, out)
	}
	// Safe to run twice: nothing left to do.
	if out := old.stile(t, "keys", "rotate-master", "--new-secret-file", newKey); !strings.Contains(out, "resuming") ||
		!strings.Contains(out, "0 re-sealed, 3 already") {
		t.Fatalf("second run:\n%s", out)
	}
	signInOld(t, "after the re-seal")

	// An instance started with the new file, sharing the clock.
	m, err := keys.LoadMaster(newKey)
	if err != nil {
		t.Fatal(err)
	}
	fresh := launch(t, dbURL, launchOptions{clock: old.clock, app: []func(*appConfig){func(c *appConfig) { c.Master = m }}})
	fresh.keyFile = newKey
	rp := newRP(t, fresh, "app", f.secret, appRedirect) // the client secret from before
	nf := &fixture{s: fresh, secret: f.secret, alice: f.alice, rp: rp}
	nf.nextStep()
	az = rp.authorize()
	tok, err := rp.exchange(nf.signIn(t, newBrowser(t, fresh), az, f.alice), az.verifier)
	if err != nil {
		t.Fatalf("exchange at the new instance: %v", err)
	}
	if c := rp.idClaims(tok, az.nonce); c["uid"] != f.alice.ID {
		t.Fatalf("ID token from the new instance: %v", c)
	}
	// The SSO session from before (the cookie jar sends it to either port).
	az = rp.authorize("prompt", "none")
	if _, err := rp.exchange(nf.silent(t, b, az), az.verifier); err != nil {
		t.Fatalf("silent sign-in with the old session: %v", err)
	}
	refreshed, err := rp.config.TokenSource(ctx, &oauth2.Token{RefreshToken: before.RefreshToken}).Token()
	if err != nil || refreshed.AccessToken == "" {
		t.Fatalf("refresh token from before, at the new instance: %v", err)
	}

	// A value sealed with the old key after the re-seal (by an instance
	// that has not heard of the change: a key ring of the old key alone).
	oldOnly, _ := keys.LoadMaster(oldKey)
	dave := old.addUser(t, "dave", false)
	sealed, _ := keys.NewSealer(oldOnly).Seal([]byte("JBSWY3DPEHPK3PXP"), storage.TOTPSecretAAD(dave.ID))
	if err := old.db.SetTOTP(ctx, dave.ID, sealed); err != nil {
		t.Fatal(err)
	}
	out, err = stileRun(dbURL, newKey, "keys", "rotate-master", "--finish")
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(out, "TOTP secrets:") {
		t.Fatalf("--finish with an old-key value: %v\n%s", err, out)
	}
	if out := fresh.stile(t, "keys", "rotate-master", "--new-secret-file", newKey); !strings.Contains(out, "1 re-sealed") {
		t.Fatalf("re-seal the straggler:\n%s", out)
	}
	if out := fresh.stile(t, "keys", "rotate-master", "--finish"); !strings.Contains(out, "finished") {
		t.Fatalf("--finish:\n%s", out)
	}

	out, err = stileRun(dbURL, oldKey, "keys", "list")
	if err == nil || !strings.Contains(err.Error(), "replaced by stile keys rotate-master") ||
		!strings.Contains(err.Error(), "use the new key file") {
		t.Fatalf("the old key file after --finish: %v\n%s", err, out)
	}
	if _, err := stileRun(dbURL, newKey, "keys", "list"); err != nil {
		t.Fatalf("the new key file after --finish: %v", err)
	}
	n := 0
	for _, col := range storage.SealedColumns {
		vs, err := old.db.ListSealed(ctx, col, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			n++
			if keys.SealedKeyID(v.Sealed) != m.ID() {
				t.Errorf("%s %s sealed with key %q, want %s", col.Table, v.Row, keys.SealedKeyID(v.Sealed), m.ID())
			}
		}
	}
	if n < 5 { // four TOTP secrets and a signing key at least
		t.Fatalf("%d sealed values", n)
	}
	nf.nextStep()
	az = rp.authorize()
	if _, err := rp.exchange(nf.signIn(t, newBrowser(t, fresh), az, f.alice), az.verifier); err != nil {
		t.Fatalf("exchange at the new instance after --finish: %v", err)
	}
	evs, err := old.db.ListEvents(ctx, storage.EventFilter{Type: "master_key."})
	if err != nil || len(evs) != 2 || evs[0].Type != "master_key.rotation_started" || evs[1].Type != "master_key.rotation_finished" {
		t.Fatalf("audit events: %+v %v", evs, err)
	}
}
