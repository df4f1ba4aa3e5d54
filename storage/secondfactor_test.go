package storage_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"

	"github.com/stile-id/stile/internal/clocktest"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestSecondFactorStore covers what migration 0004_headless adds — sent
// codes and TOTP enrolment on login transactions, recovery codes, pending
// self-service secrets, direct-mode API keys, enrolment policies, session
// handovers, and the users' phone and preferred method — on SQLite and on
// PostgreSQL.
func TestSecondFactorStore(t *testing.T) {
	tests := []struct {
		name string
		fn   func(*testing.T, fixture)
	}{
		{"UserPhoneAndPreferred", testUserPhoneAndPreferred},
		{"EnrollmentPolicy", testEnrollmentPolicy},
		{"ClientByAPIKeyID", testClientByAPIKeyID},
		{"AnyHeadless", testAnyHeadless},
		{"TransactionCode", testTransactionCode},
		{"StartEnrollment", testStartEnrollment},
		{"RecoveryCodes", testRecoveryCodes},
		{"RecoveryCodeConcurrentUse", testRecoveryCodeConcurrentUse},
		{"PendingTOTP", testPendingTOTP},
		{"Handover", testHandover},
		{"HandoverConcurrentClaim", testHandoverConcurrentClaim},
		{"AccessTokenAuthTime", testAccessTokenAuthTime},
		{"SealingContexts", testSealingContexts},
		{"RolePolicies", testRolePolicies},
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStoreFixture(t, d)) })
			}
			t.Run("UpgradeFromV3", func(t *testing.T) { testUpgradeFromV3(t, d) })
		})
	}
}

func testUserPhoneAndPreferred(t *testing.T, f fixture) {
	plain := mustUser(t, f.db, "plain")
	got, err := f.db.GetUser(ctx, plain.ID)
	if err != nil || got.Phone != "" || got.Preferred != "" {
		t.Fatalf("defaults: phone %q preferred %q, %v; want both empty", got.Phone, got.Preferred, err)
	}
	sam := &storage.User{Username: "sam", Phone: "+44 7700 900123", Preferred: "SMS"}
	if err := f.db.CreateUser(ctx, sam); err != nil {
		t.Fatal(err)
	}
	got, _ = f.db.GetUserByUsername(ctx, "sam")
	if got.Phone != "+44 7700 900123" || got.Preferred != "SMS" {
		t.Fatalf("read back phone %q preferred %q", got.Phone, got.Preferred)
	}
	if _, err := f.db.UpdateUser(ctx, sam.ID, func(u *storage.User) error { u.Phone, u.Preferred = "", "EMAIL"; return nil }); err != nil {
		t.Fatal(err)
	}
	got, _ = f.db.GetUser(ctx, sam.ID)
	if got.Phone != "" || got.Preferred != "EMAIL" {
		t.Fatalf("after update: phone %q preferred %q", got.Phone, got.Preferred)
	}
	list, _ := f.db.ListUsers(ctx)
	if len(list) != 2 || list[1].Username != "sam" || list[1].Preferred != "EMAIL" {
		t.Fatalf("list carries the new columns: %+v", list)
	}

	// Only the three methods (as the server spells them) or "" are stored.
	for _, bad := range []string{"PUSH", "sms", "TOTP_ENROLL", "RECOVERY", " TOTP"} {
		if err := f.db.CreateUser(ctx, &storage.User{Username: "bad", Preferred: bad}); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("create with preferred %q: err = %v, want ErrInvalid", bad, err)
		}
		_, err := f.db.UpdateUser(ctx, sam.ID, func(u *storage.User) error { u.Preferred = bad; return nil })
		if !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("update to preferred %q: err = %v, want ErrInvalid", bad, err)
		}
	}
	if got, _ := f.db.GetUser(ctx, sam.ID); got.Preferred != "EMAIL" {
		t.Fatalf("a refused update changed the row: preferred %q", got.Preferred)
	}
	// Phone numbers in international format only, as gateways want them.
	for _, bad := range []string{"07700 900123", "+0 7700 900123", "+44", "+44 7700 900123 ext 5", "+1234567890123456"} {
		if _, err := f.db.UpdateUser(ctx, sam.ID, func(u *storage.User) error { u.Phone = bad; return nil }); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("phone %q: err = %v, want ErrInvalid", bad, err)
		}
	}
	if n, ok := storage.E164("+1 (415) 555-0100"); n != "+14155550100" || !ok {
		t.Errorf("E164 = %q, %v; want +14155550100, true", n, ok)
	}
	for _, ok := range []string{"+44 7700 900123", "+1 (415) 555-0100", "+33.1.23.45.67.89", ""} {
		if _, err := f.db.UpdateUser(ctx, sam.ID, func(u *storage.User) error { u.Phone = ok; return nil }); err != nil {
			t.Errorf("phone %q: %v", ok, err)
		}
	}
	// Positive control: every valid value is accepted.
	for _, ok := range []string{"", "TOTP", "EMAIL", "SMS"} {
		if _, err := f.db.UpdateUser(ctx, sam.ID, func(u *storage.User) error { u.Preferred = ok; return nil }); err != nil {
			t.Errorf("preferred %q: %v", ok, err)
		}
	}
}

func testEnrollmentPolicy(t *testing.T, f fixture) {
	mustClient(t, f.db, "app")
	got, err := f.db.GetClient(ctx, "app")
	if err != nil || got.EnrollmentPolicy != storage.EnrollRefuse {
		t.Fatalf("default policy %q, %v; want refuse", got.EnrollmentPolicy, err)
	}
	for _, p := range storage.EnrollmentPolicies {
		if _, err := f.db.UpdateClient(ctx, "app", func(c *storage.Client) error { c.EnrollmentPolicy = p; return nil }); err != nil {
			t.Fatalf("policy %q: %v", p, err)
		}
		if got, _ := f.db.GetClient(ctx, "app"); got.EnrollmentPolicy != p {
			t.Fatalf("read back policy %q, want %q", got.EnrollmentPolicy, p)
		}
	}
	for _, bad := range []string{"totp", "Refuse", "email-then-sms", "email,sms"} {
		c := &storage.Client{ID: "c-bad", Type: storage.ClientWeb, AuthMethod: storage.AuthSecretBasic, SecretHash: []byte("d"),
			RedirectURIs: storage.Strings{"https://app.example.com/cb"}, EnrollmentPolicy: bad}
		if err := f.db.CreateClient(ctx, c); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("create with policy %q: err = %v, want ErrInvalid", bad, err)
		}
		_, err := f.db.UpdateClient(ctx, "app", func(c *storage.Client) error { c.EnrollmentPolicy = bad; return nil })
		if !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("update to policy %q: err = %v, want ErrInvalid", bad, err)
		}
	}
	last := storage.EnrollmentPolicies[len(storage.EnrollmentPolicies)-1]
	if got, _ := f.db.GetClient(ctx, "app"); got.EnrollmentPolicy != last {
		t.Fatalf("a refused update changed the row: %q", got.EnrollmentPolicy)
	}
	// Clearing it falls back to the default rather than storing "".
	if _, err := f.db.UpdateClient(ctx, "app", func(c *storage.Client) error { c.EnrollmentPolicy = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.db.GetClient(ctx, "app"); got.EnrollmentPolicy != storage.EnrollRefuse {
		t.Fatalf("cleared policy reads %q, want refuse", got.EnrollmentPolicy)
	}
}

func keyID(s string) storage.NullString { return storage.NullString{String: s, Valid: s != ""} }

func testClientByAPIKeyID(t *testing.T, f fixture) {
	for _, id := range []string{"one", "two", "nokey1", "nokey2"} {
		mustClient(t, f.db, id)
	}
	for id, key := range map[string]string{"one": "key-1", "two": "key-2"} {
		_, err := f.db.UpdateClient(ctx, id, func(c *storage.Client) error {
			c.Headless, c.FirstParty, c.APIKeyID, c.APIKeyMAC = true, true, keyID(key), []byte("mac-of-"+key)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for key, want := range map[string]string{"key-1": "one", "key-2": "two"} {
		c, err := f.db.ClientByAPIKeyID(ctx, key)
		if err != nil || c.ID != want || string(c.APIKeyMAC) != "mac-of-"+key || c.APIKeyID.String != key || !c.Headless {
			t.Fatalf("ClientByAPIKeyID(%q) = %+v, %v; want client %q with its MAC", key, c, err, want)
		}
	}
	// Clients without a key (NULL, not "") are not found by an empty ID, and
	// many of them can coexist under the unique index.
	for _, key := range []string{"", "key-3", "KEY-1", "key-1 "} {
		if c, err := f.db.ClientByAPIKeyID(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("ClientByAPIKeyID(%q) = %+v, %v; want ErrNotFound", key, c, err)
		}
	}
	if c, _ := f.db.GetClient(ctx, "nokey1"); c.APIKeyID.Valid || len(c.APIKeyMAC) != 0 {
		t.Fatalf("a client without a key reads back key %+v mac %x", c.APIKeyID, c.APIKeyMAC)
	}
	// A key ID belongs to one client.
	_, err := f.db.UpdateClient(ctx, "nokey1", func(c *storage.Client) error { c.APIKeyID, c.APIKeyMAC = keyID("key-1"), []byte("x"); return nil })
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("a second client with key-1: err = %v, want ErrConflict", err)
	}
	if c, _ := f.db.ClientByAPIKeyID(ctx, "key-1"); c.ID != "one" {
		t.Fatalf("after the refused reuse, key-1 finds %q", c.ID)
	}
	// Rotating a key: the old ID stops finding the client, the new one does.
	if _, err := f.db.UpdateClient(ctx, "one", func(c *storage.Client) error { c.APIKeyID, c.APIKeyMAC = keyID("key-1b"), []byte("mac-b"); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.ClientByAPIKeyID(ctx, "key-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the rotated-out key still finds a client: %v", err)
	}
	if c, err := f.db.ClientByAPIKeyID(ctx, "key-1b"); err != nil || c.ID != "one" || string(c.APIKeyMAC) != "mac-b" {
		t.Fatalf("the new key: %+v, %v", c, err)
	}
	// Deleting the client frees its key.
	if err := f.db.DeleteClient(ctx, "two"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.ClientByAPIKeyID(ctx, "key-2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a deleted client's key: %v", err)
	}
}

func testAnyHeadless(t *testing.T, f fixture) {
	check := func(when string, want bool) {
		t.Helper()
		got, err := f.db.AnyHeadless(ctx)
		if err != nil || got != want {
			t.Fatalf("%s: AnyHeadless = %v, %v; want %v", when, got, err, want)
		}
	}
	check("empty database", false)
	mustClient(t, f.db, "app")
	mustClient(t, f.db, "other")
	check("clients, none headless", false)
	if c, _ := f.db.GetClient(ctx, "app"); c.Headless {
		t.Fatal("a new client is headless by default")
	}
	// Only a first-party client may have it: its tokens come without consent.
	if _, err := f.db.UpdateClient(ctx, "app", func(c *storage.Client) error { c.Headless = true; return nil }); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("headless third-party client: err = %v, want ErrInvalid", err)
	}
	check("a refused third-party client", false)
	if _, err := f.db.UpdateClient(ctx, "app", func(c *storage.Client) error { c.Headless, c.FirstParty = true, true; return nil }); err != nil {
		t.Fatal(err)
	}
	check("one client enabled it", true)
	if _, err := f.db.UpdateClient(ctx, "app", func(c *storage.Client) error { c.FirstParty = false; return nil }); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("a headless client made third-party: err = %v, want ErrInvalid", err)
	}
	if _, err := f.db.UpdateClient(ctx, "app", func(c *storage.Client) error { c.Headless = false; return nil }); err != nil {
		t.Fatal(err)
	}
	check("disabled again", false)
	// Only a confidential client may have the direct mode.
	spa := &storage.Client{ID: "spa", Type: storage.ClientSPA, AuthMethod: storage.AuthNone, RequirePKCE: true,
		RedirectURIs: storage.Strings{"https://spa.example.com/cb"}, Headless: true, FirstParty: true}
	if err := f.db.CreateClient(ctx, spa); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("headless public client: err = %v, want ErrInvalid", err)
	}
	check("after a refused headless SPA", false)
	if _, err := f.db.UpdateClient(ctx, "other", func(c *storage.Client) error { c.Headless, c.FirstParty = true, true; return nil }); err != nil {
		t.Fatal(err)
	}
	check("another client enabled it", true)
	if err := f.db.DeleteClient(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	check("the headless client deleted", false)
}

// mustTx opens a login transaction for a new user of client "app".
func mustTx(t *testing.T, f fixture, id string) *storage.LoginTransaction {
	t.Helper()
	if _, err := f.db.GetClient(ctx, "app"); errors.Is(err, storage.ErrNotFound) {
		mustClient(t, f.db, "app")
	}
	u := mustUser(t, f.db, "u-"+id)
	tx := &storage.LoginTransaction{ID: id, ClientID: "app", Door: storage.DoorPages, UserID: u.ID, Method: "EMAIL", BindingHash: []byte("b"),
		ExpiresAt: f.clock.Now().Add(10 * time.Minute)}
	if err := f.db.CreateLoginTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	return tx
}

func mustGetTx(t *testing.T, f fixture, id string) *storage.LoginTransaction {
	t.Helper()
	tx, err := f.db.GetLoginTransaction(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func testTransactionCode(t *testing.T, f fixture) {
	mustTx(t, f, "tx1")
	if tx := mustGetTx(t, f, "tx1"); tx.CodeMAC != nil || tx.CodeExpiresAt.Valid || tx.CodeSentAt.Valid || tx.PendingSecret != nil {
		t.Fatalf("a new transaction has a code: %+v", tx)
	}
	sent1, exp1 := f.clock.Now(), f.clock.Now().Add(5*time.Minute)
	if err := f.db.SetTransactionCode(ctx, "tx1", []byte("mac-1"), exp1); err != nil {
		t.Fatal(err)
	}
	tx := mustGetTx(t, f, "tx1")
	if string(tx.CodeMAC) != "mac-1" || !tx.CodeExpiresAt.Time.Equal(exp1) || !tx.CodeSentAt.Time.Equal(sent1) {
		t.Fatalf("first code: mac %q expires %v sent %v; want mac-1, %v, %v", tx.CodeMAC, tx.CodeExpiresAt, tx.CodeSentAt, exp1, sent1)
	}
	// A new code replaces the old one and restarts the resend clock.
	f.clock.Advance(31 * time.Second)
	sent2, exp2 := f.clock.Now(), f.clock.Now().Add(5*time.Minute)
	if err := f.db.SetTransactionCode(ctx, "tx1", []byte("mac-2"), exp2); err != nil {
		t.Fatal(err)
	}
	tx = mustGetTx(t, f, "tx1")
	if string(tx.CodeMAC) != "mac-2" || !tx.CodeExpiresAt.Time.Equal(exp2) || !tx.CodeSentAt.Time.Equal(sent2) {
		t.Fatalf("second code: mac %q expires %v sent %v; want mac-2, %v, %v", tx.CodeMAC, tx.CodeExpiresAt, tx.CodeSentAt, exp2, sent2)
	}
	if tx.State != storage.TxOTP || tx.OTPFailures != 0 {
		t.Fatalf("setting a code changed the state: %+v", tx)
	}
	if err := f.db.SetTransactionCode(ctx, "nope", []byte("m"), exp2); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown transaction: %v", err)
	}
	// A finished transaction forgets its code and takes no new one.
	if err := f.db.FinishLoginTransaction(ctx, "tx1"); err != nil {
		t.Fatal(err)
	}
	if tx := mustGetTx(t, f, "tx1"); tx.CodeMAC != nil {
		t.Fatalf("finished transaction keeps its code MAC %q", tx.CodeMAC)
	}
	if err := f.db.SetTransactionCode(ctx, "tx1", []byte("mac-3"), exp2); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("code on a finished transaction: %v", err)
	}
	// Nor does a dead one.
	mustTx(t, f, "tx2")
	for range 3 {
		wrongCode(t, f, "tx2", 3)
	}
	if err := f.db.SetTransactionCode(ctx, "tx2", []byte("mac-4"), exp2); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("code on a dead transaction: %v", err)
	}
	if tx := mustGetTx(t, f, "tx2"); tx.CodeMAC != nil {
		t.Fatalf("a dead transaction took a code: %q", tx.CodeMAC)
	}
}

// wrongCode spends one wrong-code slot of a transaction as the login does —
// reserved before the code is checked, the transaction killed once its
// last slot is spent — and returns the transaction as it is then.
func wrongCode(t *testing.T, f fixture, id string, max int) (*storage.LoginTransaction, error) {
	t.Helper()
	if _, err := f.db.ReserveOTPAttempt(ctx, id, max, f.clock.Now().Add(-time.Hour), nil); err != nil {
		return nil, err
	}
	if err := f.db.KillSpentTransaction(ctx, id, max); err != nil {
		return nil, err
	}
	return mustGetTx(t, f, id), nil
}

func testStartEnrollment(t *testing.T, f fixture) {
	mustTx(t, f, "tx1")
	f.db.SetTransactionCode(ctx, "tx1", []byte("mac-1"), f.clock.Now().Add(time.Minute))
	wrongCode(t, f, "tx1", 5)
	wrongCode(t, f, "tx1", 5)
	if err := f.db.StartEnrollment(ctx, "tx1", []byte("sealed-secret")); err != nil {
		t.Fatal(err)
	}
	tx := mustGetTx(t, f, "tx1")
	if tx.State != storage.TxEnroll || string(tx.PendingSecret) != "sealed-secret" || tx.CodeMAC != nil || tx.OTPFailures != 0 {
		t.Fatalf("after StartEnrollment: state %q secret %q code %q failures %d; want enroll, the secret, no code, 0",
			tx.State, tx.PendingSecret, tx.CodeMAC, tx.OTPFailures)
	}
	// Once: a second start would swap the secret the user already scanned.
	if err := f.db.StartEnrollment(ctx, "tx1", []byte("other")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second StartEnrollment: %v", err)
	}
	if tx := mustGetTx(t, f, "tx1"); string(tx.PendingSecret) != "sealed-secret" {
		t.Fatalf("the pending secret changed to %q", tx.PendingSecret)
	}
	// An enrolling transaction takes no sent code…
	if err := f.db.SetTransactionCode(ctx, "tx1", []byte("mac-2"), f.clock.Now().Add(time.Minute)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("code during enrolment: %v", err)
	}
	// …but counts wrong codes and can die of them.
	for i := 1; i <= 3; i++ {
		got, err := wrongCode(t, f, "tx1", 3)
		if err != nil || got.OTPFailures != i {
			t.Fatalf("failure %d during enrolment: %+v, %v", i, got, err)
		}
		if want := map[bool]string{true: storage.TxDead, false: storage.TxEnroll}[i == 3]; got.State != want {
			t.Fatalf("after %d failures: state %q, want %q", i, got.State, want)
		}
	}
	if err := f.db.FinishLoginTransaction(ctx, "tx1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("finishing a dead enrolment: %v", err)
	}
	// Positive control: an enrolment confirmed in time finishes once and
	// forgets the pending secret.
	mustTx(t, f, "tx2")
	if err := f.db.StartEnrollment(ctx, "tx2", []byte("s2")); err != nil {
		t.Fatal(err)
	}
	if err := f.db.FinishLoginTransaction(ctx, "tx2"); err != nil {
		t.Fatal(err)
	}
	if tx := mustGetTx(t, f, "tx2"); tx.State != storage.TxDone || tx.PendingSecret != nil {
		t.Fatalf("after finishing: state %q secret %q", tx.State, tx.PendingSecret)
	}
	if err := f.db.StartEnrollment(ctx, "tx2", []byte("s3")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("StartEnrollment on a finished transaction: %v", err)
	}
	if err := f.db.StartEnrollment(ctx, "nope", []byte("s")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown transaction: %v", err)
	}
}

func codesLeft(t *testing.T, f fixture, userID string) int {
	t.Helper()
	n, err := f.db.RecoveryCodesLeft(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func use(t *testing.T, f fixture, userID, code string) bool {
	t.Helper()
	ok, err := f.db.UseRecoveryCode(ctx, userID, []byte(code))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func macs(codes ...string) [][]byte {
	out := make([][]byte, len(codes))
	for i, c := range codes {
		out[i] = []byte(c)
	}
	return out
}

func testRecoveryCodes(t *testing.T, f fixture) {
	alice, bob := mustUser(t, f.db, "alice"), mustUser(t, f.db, "bob")
	if n := codesLeft(t, f, alice.ID); n != 0 {
		t.Fatalf("codes before any were made: %d", n)
	}
	if use(t, f, alice.ID, "a1") {
		t.Fatal("a code was accepted before any were made")
	}
	if err := f.db.ReplaceRecoveryCodes(ctx, alice.ID, macs("a1", "a2", "a3")); err != nil {
		t.Fatal(err)
	}
	if err := f.db.ReplaceRecoveryCodes(ctx, bob.ID, macs("b1", "shared")); err != nil {
		t.Fatal(err)
	}
	if n := codesLeft(t, f, alice.ID); n != 3 {
		t.Fatalf("left = %d, want 3", n)
	}
	// Each code works exactly once.
	if !use(t, f, alice.ID, "a1") {
		t.Fatal("first use of a1 refused")
	}
	if use(t, f, alice.ID, "a1") {
		t.Fatal("a1 worked twice")
	}
	if n := codesLeft(t, f, alice.ID); n != 2 {
		t.Fatalf("left after one use = %d, want 2", n)
	}
	// A code is the user's own: bob's codes do not work for alice, and
	// trying them does not spend them.
	if use(t, f, alice.ID, "b1") || use(t, f, alice.ID, "shared") || use(t, f, alice.ID, "nonsense") {
		t.Fatal("alice signed in with a code that is not hers")
	}
	if !use(t, f, bob.ID, "b1") {
		t.Fatal("bob's own code refused after alice tried it")
	}
	// Replacing voids the whole old set, used or not.
	if err := f.db.ReplaceRecoveryCodes(ctx, alice.ID, macs("a4", "a5")); err != nil {
		t.Fatal(err)
	}
	if n := codesLeft(t, f, alice.ID); n != 2 {
		t.Fatalf("left after replacing = %d, want 2", n)
	}
	if use(t, f, alice.ID, "a2") || use(t, f, alice.ID, "a3") {
		t.Fatal("an old, unused code still works after the set was replaced")
	}
	if !use(t, f, alice.ID, "a4") {
		t.Fatal("a new code refused")
	}
	if n := codesLeft(t, f, bob.ID); n != 1 {
		t.Fatalf("replacing alice's codes changed bob's: %d left, want 1", n)
	}
	// The replacement is all or nothing: a set that cannot be stored (a
	// duplicate) leaves the old set working.
	if err := f.db.ReplaceRecoveryCodes(ctx, alice.ID, macs("a6", "a6")); err == nil {
		t.Fatal("a set with a duplicate code was stored")
	}
	if n := codesLeft(t, f, alice.ID); n != 1 || !use(t, f, alice.ID, "a5") {
		t.Fatalf("a failed replacement lost the old set: %d left", n)
	}
	// An empty set removes every code.
	if err := f.db.ReplaceRecoveryCodes(ctx, bob.ID, nil); err != nil {
		t.Fatal(err)
	}
	if codesLeft(t, f, bob.ID) != 0 || use(t, f, bob.ID, "shared") {
		t.Fatal("codes survived an empty replacement")
	}
}

// race runs fn from n goroutines released at once and returns how many
// reported success.
func race(t *testing.T, n int, fn func(i int) (bool, error)) int {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		wins  int
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			ok, err := fn(i)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	return wins
}

func testRecoveryCodeConcurrentUse(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "alice")
	for round := range 20 {
		code := fmt.Sprintf("code-%d", round)
		if err := f.db.ReplaceRecoveryCodes(ctx, u.ID, macs(code, "spare")); err != nil {
			t.Fatal(err)
		}
		wins := race(t, 2, func(int) (bool, error) { return f.db.UseRecoveryCode(ctx, u.ID, []byte(code)) })
		if wins != 1 {
			t.Fatalf("round %d: %d of 2 concurrent uses of one code won, want exactly 1", round, wins)
		}
		if n := codesLeft(t, f, u.ID); n != 1 {
			t.Fatalf("round %d: %d codes left, want the spare", round, n)
		}
	}
	// Many at once: still one.
	f.db.ReplaceRecoveryCodes(ctx, u.ID, macs("hot"))
	if wins := race(t, 8, func(int) (bool, error) { return f.db.UseRecoveryCode(ctx, u.ID, []byte("hot")) }); wins != 1 {
		t.Fatalf("%d of 8 concurrent uses won, want 1", wins)
	}
	// Positive control: two different codes used concurrently both work, so
	// the single winner above is the code's, not the harness's.
	f.db.ReplaceRecoveryCodes(ctx, u.ID, macs("c0", "c1"))
	if wins := race(t, 2, func(i int) (bool, error) { return f.db.UseRecoveryCode(ctx, u.ID, []byte(fmt.Sprintf("c%d", i))) }); wins != 2 {
		t.Fatalf("two different codes used concurrently: %d won, want 2", wins)
	}
}

func testPendingTOTP(t *testing.T, f fixture) {
	alice, bob := mustUser(t, f.db, "alice"), mustUser(t, f.db, "bob")
	if _, err := f.db.PendingTOTP(ctx, alice.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("nothing pending yet: %v", err)
	}
	exp := f.clock.Now().Add(10 * time.Minute)
	if err := f.db.SetPendingTOTP(ctx, alice.ID, []byte("s1"), exp); err != nil {
		t.Fatal(err)
	}
	if got, err := f.db.PendingTOTP(ctx, alice.ID); err != nil || string(got) != "s1" {
		t.Fatalf("pending = %q, %v", got, err)
	}
	if _, err := f.db.PendingTOTP(ctx, bob.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("bob sees a pending secret: %v", err)
	}
	// Starting over replaces the secret.
	if err := f.db.SetPendingTOTP(ctx, alice.ID, []byte("s2"), exp); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.db.PendingTOTP(ctx, alice.ID); string(got) != "s2" {
		t.Fatalf("after replacing: %q, want s2", got)
	}
	// It stops working at its expiry (positive control just before).
	f.clock.Advance(10*time.Minute - time.Second)
	if got, err := f.db.PendingTOTP(ctx, alice.ID); err != nil || string(got) != "s2" {
		t.Fatalf("a second before expiry: %q, %v", got, err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.db.PendingTOTP(ctx, alice.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("at expiry: %v", err)
	}
	// An expired one can be set again, which restarts its lifetime.
	if err := f.db.SetPendingTOTP(ctx, alice.ID, []byte("s3"), f.clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.db.PendingTOTP(ctx, alice.ID); string(got) != "s3" {
		t.Fatalf("re-set after expiry: %q", got)
	}
	f.db.SetPendingTOTP(ctx, bob.ID, []byte("b"), f.clock.Now().Add(time.Minute))
	if err := f.db.DeletePendingTOTP(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.PendingTOTP(ctx, alice.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := f.db.DeletePendingTOTP(ctx, alice.ID); err != nil {
		t.Fatalf("deleting nothing: %v", err)
	}
	if got, err := f.db.PendingTOTP(ctx, bob.ID); err != nil || string(got) != "b" {
		t.Fatalf("deleting alice's removed bob's: %q, %v", got, err)
	}
}

func testHandover(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "alice")
	s := mustSession(t, f, u.ID)
	oldCookie := s.CookieHash
	if err := f.db.SetHandover(ctx, s.ID, []byte("ticket-1"), f.clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := f.db.ClaimHandover(ctx, []byte("ticket-1"), []byte("browser-cookie"))
	if err != nil || got.ID != s.ID || string(got.CookieHash) != "browser-cookie" || got.UserID != u.ID {
		t.Fatalf("claim = %+v, %v", got, err)
	}
	// The session now answers to the new cookie only.
	if _, err := f.db.SessionByCookie(ctx, oldCookie); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the pre-handover cookie still finds the session: %v", err)
	}
	// Once.
	if _, err := f.db.ClaimHandover(ctx, []byte("ticket-1"), []byte("thief-cookie")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second claim: %v", err)
	}
	if cur, _ := f.db.GetSession(ctx, s.ID); string(cur.CookieHash) != "browser-cookie" {
		t.Fatalf("a refused claim changed the cookie to %q", cur.CookieHash)
	}
	if _, err := f.db.ClaimHandover(ctx, []byte("never-issued"), []byte("c")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown ticket: %v", err)
	}

	// Not after it expires; positive control one second before.
	early, late := mustSession(t, f, u.ID), mustSession(t, f, u.ID)
	f.db.SetHandover(ctx, early.ID, []byte("t-early"), f.clock.Now().Add(time.Minute))
	f.db.SetHandover(ctx, late.ID, []byte("t-late"), f.clock.Now().Add(time.Minute))
	f.clock.Advance(time.Minute - time.Second)
	if _, err := f.db.ClaimHandover(ctx, []byte("t-early"), []byte("c-early")); err != nil {
		t.Fatalf("claim a second before expiry: %v", err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.db.ClaimHandover(ctx, []byte("t-late"), []byte("c-late")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("claim at expiry: %v", err)
	}
	if cur, _ := f.db.GetSession(ctx, late.ID); !bytes.Equal(cur.CookieHash, late.CookieHash) {
		t.Fatal("an expired ticket changed the session's cookie")
	}

	// A new ticket replaces the old one.
	s2 := mustSession(t, f, u.ID)
	f.db.SetHandover(ctx, s2.ID, []byte("t-a"), f.clock.Now().Add(time.Minute))
	f.db.SetHandover(ctx, s2.ID, []byte("t-b"), f.clock.Now().Add(time.Minute))
	if _, err := f.db.ClaimHandover(ctx, []byte("t-a"), []byte("c-a")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the replaced ticket: %v", err)
	}
	if _, err := f.db.ClaimHandover(ctx, []byte("t-b"), []byte("c-b")); err != nil {
		t.Fatalf("the new ticket: %v", err)
	}

	// An ended session hands nothing over, whether it ended before or after
	// the ticket was issued.
	s3 := mustSession(t, f, u.ID)
	f.db.SetHandover(ctx, s3.ID, []byte("t-3"), f.clock.Now().Add(time.Minute))
	if err := f.db.EndSession(ctx, s3.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.ClaimHandover(ctx, []byte("t-3"), []byte("c-3")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ticket of an ended session: %v", err)
	}
	if err := f.db.SetHandover(ctx, s3.ID, []byte("t-4"), f.clock.Now().Add(time.Minute)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("handover for an ended session: %v", err)
	}
	if err := f.db.SetHandover(ctx, "no-such-session", []byte("t-5"), f.clock.Now().Add(time.Minute)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("handover for an unknown session: %v", err)
	}
}

func testHandoverConcurrentClaim(t *testing.T, f fixture) {
	u := mustUser(t, f.db, "alice")
	s := mustSession(t, f, u.ID)
	f.db.SetHandover(ctx, s.ID, []byte("ticket"), f.clock.Now().Add(time.Minute))
	winner := make([]bool, 8)
	wins := race(t, 8, func(i int) (bool, error) {
		_, err := f.db.ClaimHandover(ctx, []byte("ticket"), []byte(fmt.Sprintf("cookie-%d", i)))
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		winner[i] = err == nil
		return err == nil, err
	})
	if wins != 1 {
		t.Fatalf("%d of 8 concurrent claims of one ticket won, want exactly 1", wins)
	}
	cur, _ := f.db.GetSession(ctx, s.ID)
	for i, won := range winner {
		if won && string(cur.CookieHash) != fmt.Sprintf("cookie-%d", i) {
			t.Fatalf("the session's cookie is %q, not the winner's (cookie-%d)", cur.CookieHash, i)
		}
	}
}

func testAccessTokenAuthTime(t *testing.T, f fixture) {
	mustClient(t, f.db, "app")
	u := mustUser(t, f.db, "alice")
	at := f.clock.Now().Add(-3 * time.Minute)
	for id, when := range map[string]sql.NullTime{"with": {Time: at, Valid: true}, "without": {}} {
		tok := &storage.AccessToken{ID: id, ClientID: "app", UserID: u.ID, AuthTime: when, ExpiresAt: f.clock.Now().Add(time.Minute)}
		if err := f.db.CreateAccessToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := f.db.GetAccessToken(ctx, "with"); !got.AuthTime.Valid || !got.AuthTime.Time.Equal(at) {
		t.Fatalf("auth_time = %v, want %v", got.AuthTime, at)
	}
	if got, _ := f.db.GetAccessToken(ctx, "without"); got.AuthTime.Valid {
		t.Fatalf("a token without auth_time reads %v", got.AuthTime)
	}
}

// testSealingContexts: secrets sealed for one place do not open in another
// because each place has its own additional data.
func testSealingContexts(t *testing.T, _ fixture) {
	aads := map[string][]byte{
		"pending(tx1)":      storage.PendingSecretAAD("tx1"),
		"pending(tx2)":      storage.PendingSecretAAD("tx2"),
		"pendingTOTP(tx1)":  storage.PendingTOTPAAD("tx1"),
		"totp(tx1)":         storage.TOTPSecretAAD("tx1"),
		"enrollLink(tx1)":   storage.EnrollmentSecretAAD("tx1"),
		"pending(tx1:more)": storage.PendingSecretAAD("tx1:more"),
	}
	seen := map[string]string{}
	for name, aad := range aads {
		if other, dup := seen[string(aad)]; dup {
			t.Errorf("%s and %s share the additional data %q", name, other, aad)
		}
		seen[string(aad)] = name
	}
	if !bytes.Equal(storage.PendingSecretAAD("tx1"), storage.PendingSecretAAD("tx1")) {
		t.Error("PendingSecretAAD is not deterministic")
	}
}

// testUpgradeFromV3 migrates a database holding data at schema version 3
// to the current one: the rows survive (SQLite rebuilds login_transactions
// to widen its state check), the new columns take their defaults, and the
// rebuilt table keeps its foreign keys.
func testUpgradeFromV3(t *testing.T, d storagetest.Dialect) {
	rawURL := d.URL(t)
	driver, dsn, dir, bind, gd := "postgres", rawURL, "migrations/postgres", sqlx.DOLLAR, goose.DialectPostgres
	if strings.HasPrefix(rawURL, "sqlite:") {
		q := url.Values{}
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "busy_timeout(10000)")
		q.Set("_time_format", "sqlite")
		q.Set("_timezone", "UTC")
		driver, dsn, dir, bind, gd = "sqlite", "file:"+strings.TrimPrefix(rawURL, "sqlite:")+"?"+q.Encode(), "migrations/sqlite", sqlx.QUESTION, goose.DialectSQLite3
		// Created private, as stile creates it: Open refuses a file others can read.
		if err := os.WriteFile(strings.TrimPrefix(rawURL, "sqlite:"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	p, err := goose.NewProvider(gd, raw, os.DirFS(dir), goose.WithTableName("stile_schema_migrations"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 3); err != nil {
		t.Fatalf("migrate to version 3: %v", err)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, stmt := range []struct {
		q    string
		args []any
	}{
		{`INSERT INTO users (id, username, username_key, email, created_at, updated_at) VALUES (?, 'old', 'old', 'old@example.com', ?, ?)`,
			[]any{"u1", now, now}},
		{`INSERT INTO clients (id, type, auth_method, secret_hash, redirect_uris, created_at, updated_at)
			VALUES ('app', 'web', 'client_secret_basic', ?, '["https://app.example.com/cb"]', ?, ?)`, []any{[]byte("d"), now, now}},
		{`INSERT INTO login_transactions (id, client_id, user_id, binding_hash, method, otp_failures, state, created_at, expires_at)
			VALUES ('tx-old', 'app', 'u1', ?, 'TOTP', 2, 'otp', ?, ?)`, []any{[]byte("bind"), now, now.Add(10 * time.Minute)}},
	} {
		if _, err := raw.ExecContext(ctx, sqlx.Rebind(bind, stmt.q), stmt.args...); err != nil {
			t.Fatalf("seed at version 3: %v\n%s", err, stmt.q)
		}
	}

	clock := clocktest.New(now)
	db := storagetest.Open(t, rawURL, storage.WithClock(clock.Now))
	tx, err := db.GetLoginTransaction(ctx, "tx-old")
	if err != nil {
		t.Fatalf("the version-3 transaction after the upgrade: %v", err)
	}
	if tx.UserID != "u1" || tx.ClientID != "app" || string(tx.BindingHash) != "bind" || tx.Method != "TOTP" || tx.OTPFailures != 2 ||
		tx.State != storage.TxOTP || !tx.ExpiresAt.Equal(now.Add(10*time.Minute)) || tx.CodeMAC != nil || tx.CodeSentAt.Valid || tx.PendingSecret != nil {
		t.Fatalf("the transaction changed in the upgrade: %+v", tx)
	}
	u, err := db.GetUser(ctx, "u1")
	if err != nil || u.Phone != "" || u.Preferred != "" || u.Email != "old@example.com" {
		t.Fatalf("user after the upgrade: %+v, %v", u, err)
	}
	c, err := db.GetClient(ctx, "app")
	if err != nil || c.EnrollmentPolicy != storage.EnrollRefuse || c.APIKeyID.Valid || len(c.APIKeyMAC) != 0 {
		t.Fatalf("client after the upgrade: %+v, %v", c, err)
	}
	// The old transaction can use the new state and columns.
	if err := db.SetTransactionCode(ctx, "tx-old", []byte("m"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := db.StartEnrollment(ctx, "tx-old", []byte("s")); err != nil {
		t.Fatalf("state enroll after the upgrade: %v", err)
	}
	// The state check still refuses states nobody defined.
	if _, err := raw.ExecContext(ctx, `UPDATE login_transactions SET state = 'bogus' WHERE id = 'tx-old'`); err == nil {
		t.Fatal("the upgraded table took an undefined state")
	}
	if err := db.CreateLoginTransaction(ctx, &storage.LoginTransaction{ID: "tx-new", ClientID: "app", Door: storage.DoorPages, UserID: "u1", Method: "EMAIL",
		ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	// The rebuilt table still cascades from its client.
	if err := db.DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"tx-old", "tx-new"} {
		if _, err := db.GetLoginTransaction(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("transaction %s survived its client's deletion: %v", id, err)
		}
	}
}

// testRolePolicies: a role's enrolment policy takes the place of the
// client's for its users; of several, the strictest wins (migration 0005).
func testRolePolicies(t *testing.T, f fixture) {
	client := &storage.Client{EnrollmentPolicy: storage.EnrollEmailThenTOTP}
	policyFor := func(roles ...string) string {
		t.Helper()
		p, err := f.db.EnrollmentPolicyFor(ctx, &storage.User{Roles: roles}, client)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got := policyFor("staff"); got != storage.EnrollEmailThenTOTP {
		t.Fatalf("no role policies: %s, want the client's", got)
	}
	for role, policy := range map[string]string{"staff": storage.EnrollSMS, "admin": storage.EnrollRefuse, "intern": storage.EnrollTOTPAfterPassword} {
		if err := f.db.SetRolePolicy(ctx, role, policy); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		roles []string
		want  string
	}{
		{nil, storage.EnrollEmailThenTOTP},
		{[]string{"editor"}, storage.EnrollEmailThenTOTP}, // a role without a policy
		{[]string{"staff"}, storage.EnrollSMS},
		{[]string{"intern"}, storage.EnrollTOTPAfterPassword}, // looser than the client's: a role may loosen too
		{[]string{"intern", "staff"}, storage.EnrollSMS},
		{[]string{"staff", "admin", "editor"}, storage.EnrollRefuse},
	} {
		if got := policyFor(c.roles...); got != c.want {
			t.Errorf("roles %v: %s, want %s", c.roles, got, c.want)
		}
	}
	// Setting again replaces; clearing gives the client's back.
	if err := f.db.SetRolePolicy(ctx, "admin", storage.EnrollEmail); err != nil {
		t.Fatal(err)
	}
	if got := policyFor("admin"); got != storage.EnrollEmail {
		t.Fatalf("after replacing admin's policy: %s", got)
	}
	if err := f.db.DeleteRolePolicy(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	if got := policyFor("admin"); got != storage.EnrollEmailThenTOTP {
		t.Fatalf("after clearing admin's policy: %s", got)
	}
	if err := f.db.DeleteRolePolicy(ctx, "admin"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("clearing it again: %v, want ErrNotFound", err)
	}
	list, err := f.db.RolePolicies(ctx)
	if err != nil || len(list) != 2 || list[0].Role != "intern" || list[1].Role != "staff" || list[1].EnrollmentPolicy != storage.EnrollSMS {
		t.Fatalf("list: %+v, %v", list, err)
	}
	for _, bad := range [][2]string{{"staff", "sometimes"}, {"staff", ""}, {"", storage.EnrollRefuse}, {" staff", storage.EnrollRefuse}} {
		if err := f.db.SetRolePolicy(ctx, bad[0], bad[1]); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("role %q policy %q: %v, want ErrInvalid", bad[0], bad[1], err)
		}
	}
}
