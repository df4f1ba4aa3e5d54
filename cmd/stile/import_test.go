package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/internal/passhash"
	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

const importFixture = "../../testdata/import/users.jsonl"

// importLine is what a test needs of a fixture line.
type importLine struct {
	Username   string   `json:"username"`
	Hash       string   `json:"password_hash"`
	TOTPSecret string   `json:"totp_secret"`
	Roles      []string `json:"roles"`
}

func readImportFixture(t *testing.T) []importLine {
	t.Helper()
	b, err := os.ReadFile(importFixture)
	if err != nil {
		t.Fatal(err)
	}
	var out []importLine
	for line := range strings.Lines(string(b)) {
		var l importLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// runImport runs `stile user import ARGS --json` against s's database and
// returns the report, stderr and the error (a failed line makes one).
func runImport(t *testing.T, s *server, stdin string, args ...string) (*account.ImportReport, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(append([]string{"user", "import"}, args...), "--json", "--database", s.dbURL, "--secret-file", s.keyFile)
	err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(stdin), &out, &errOut)
	var rep account.ImportReport
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		t.Fatalf("stile %s printed no report (%v): %s\n%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return &rep, errOut.String(), err
}

// TestImportSignIn imports the fixture of real hashes (one per format,
// made by each system's own code) with `stile user import`, then every
// account signs in over the direct mode with its old password and its
// TOTP secret: a wrong password first fails and leaves the old hash; the
// right one succeeds and leaves an argon2id hash behind, with the user's
// existing sessions untouched. A second import changes nothing.
func TestImportSignIn(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := startServer(t, d.URL(t))
			h := &hfixture{fixture: &fixture{s: s}}
			c := h.dmAdd(t, "cms")
			lines := readImportFixture(t)

			rep, _, err := runImport(t, s, "", importFixture)
			if err != nil || rep.Imported != len(lines) || len(rep.Skipped)+len(rep.Failed) != 0 {
				t.Fatalf("import: %v %+v, want %d imported", err, rep, len(lines))
			}
			for i, l := range lines {
				t.Run(l.Username, func(t *testing.T) { importedSignsIn(t, h, c, l, fmt.Sprintf("198.51.100.%d", i+1)) })
			}

			before := hashes(t, s.db)
			rep, _, err = runImport(t, s, "", importFixture)
			if err != nil || rep.Imported != 0 || len(rep.Skipped) != len(lines) || len(rep.Failed) != 0 {
				t.Fatalf("second import: %v %+v, want all %d skipped", err, rep, len(lines))
			}
			if rep.Skipped[0].Line != 1 || rep.Skipped[0].Username != lines[0].Username || rep.Skipped[0].Reason != storage.SkipUsernameTaken {
				t.Fatalf("skip %+v", rep.Skipped[0])
			}
			if after := hashes(t, s.db); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatal("the second import changed a stored hash")
			}
		})
	}
}

func importedSignsIn(t *testing.T, h *hfixture, c *dmClient, l importLine, ip string) {
	s := h.s
	stored, err := s.db.GetUserByUsername(t.Context(), l.Username)
	if err != nil {
		t.Fatal(err)
	}
	if stored.PasswordHash != l.Hash {
		t.Fatal("the import did not store the hash as given")
	}
	if _, err := s.db.GetTOTP(t.Context(), stored.ID); err != nil {
		t.Fatalf("no TOTP enrolment: %v", err)
	}
	other := signIn(t, s.db, l.Username, "cms") // a session from before: the re-hash must not end it
	u := &user{User: stored, password: "correct horse " + l.Username, totpSecret: l.TOTPSecret}
	const hdr = "X-End-User-IP"

	r := h.dmCall(t, "authenticate", map[string]string{"username": u.Username, "password": u.password + "x", "apiKey": c.apiKey}, hdr, ip)
	expect(t, "wrong password", r, http.StatusUnauthorized, string(login.CodeInvalidCredentials))
	if got := currentHash(t, s.db, u.ID); got != l.Hash {
		t.Fatal("a wrong password changed the stored hash")
	}

	r = h.dmCall(t, "authenticate", map[string]string{"username": u.Username, "password": u.password, "apiKey": c.apiKey}, hdr, ip)
	expect(t, "right password", r, http.StatusOK, "")
	if r.str("authType") != login.MethodTOTP {
		t.Fatalf("authenticate: %v, want a TOTP step", r.body)
	}
	got := currentHash(t, s.db, u.ID)
	if !strings.HasPrefix(got, "$argon2id$") || !login.DefaultArgon2id.Current(got) {
		t.Fatalf("after the first sign-in the hash is %.12s…, want stile's argon2id", got)
	}
	if ok, err := login.DefaultArgon2id.Verify(got, u.password); !ok || err != nil {
		t.Fatalf("the new hash does not verify the password: %v %v", ok, err)
	}
	if !strings.Contains(s.logs.String(), "password re-hashed with argon2id") {
		t.Fatal("the re-hash was not logged")
	}
	if strings.Contains(s.logs.String(), u.password) || strings.Contains(s.logs.String(), l.Hash) {
		t.Fatal("the log holds the password or the old hash")
	}
	if ended := other.ended(t, s.db); ended != "session ended false, refresh revoked false, access revoked false" {
		t.Fatalf("the re-hash ended what the user had: %s", ended)
	}

	v := h.dmLogin(t, c.apiKey, u.Username, r.str("transactionID"), login.MethodTOTP, s.code(t, u), hdr, ip)
	expect(t, "TOTP with the imported secret", v, http.StatusOK, "")
	if v.str("uid") != u.ID || v.str("id_token") == "" || fmt.Sprint(v.body["roles"]) != fmt.Sprint(l.Roles) {
		t.Fatalf("login answer %v, want uid %s and roles %v", v.body, u.ID, l.Roles)
	}

	// The next sign-in checks the argon2id hash and leaves it as it is.
	r = h.dmCall(t, "authenticate", map[string]string{"username": u.Username, "password": u.password, "apiKey": c.apiKey}, hdr, ip)
	expect(t, "second sign-in", r, http.StatusOK, "")
	if again := currentHash(t, s.db, u.ID); again != got {
		t.Fatal("an argon2id hash with today's parameters was replaced")
	}
}

func currentHash(t *testing.T, db *storage.DB, id string) string {
	t.Helper()
	u, err := db.GetUser(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u.PasswordHash
}

func hashes(t *testing.T, db *storage.DB) map[string]string {
	t.Helper()
	users, err := db.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, u := range users {
		out[u.Username] = u.PasswordHash
	}
	return out
}

// TestImportBadLines: a file whose line 3 is not JSON, and whose later
// lines have an unknown hash, a hash over the work bound, an email that is
// none, a phone that is none, a missing username, a bad TOTP secret and a
// plain-text password field, reports each by its line number, imports the
// good lines around them (stdin, through "-"), skips a username and an
// email taken earlier in the same file, and exits non-zero.
func TestImportBadLines(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := startServer(t, d.URL(t))
			lines := readImportFixture(t)
			good := func(i int, name string) string {
				return fmt.Sprintf(`{"username":%q,"email":"%s@example.com","password_hash":%q}`, name, name, lines[i].Hash)
			}
			input := "\ufeff" + strings.Join([]string{ // a byte-order mark first, as some Windows exports have
				good(0, "one"),
				good(1, "two"),
				`{"username": "three", "password_hash": `, // 3: broken JSON
				good(2, "four"),
				"", // 5: blank, not a record
				`{"username":"six","password_hash":"md5:5f4dcc3b5aa765d61d8327deb882cf99"}`,     // 6
				`{"username":"seven","password_hash":"$2y$31$` + strings.Repeat("a", 53) + `"}`, // 7
				`{"username":"eight","email":"not an address"}`,                                 // 8
				`{"username":"nine","phone":"12"}`,                                              // 9
				`{"email":"ten@example.com"}`,                                                   // 10
				`{"username":"eleven","totp_secret":"not base32!"}`,                             // 11
				`{"username":"twelve","password":"hunter2"}`,                                    // 12
				good(3, "ONE"), // 13: one's username again
				good(4, "fourteen"),
				`{"username":"fifteen","email":"One@Example.com"}`, // 15: one's email again
				`{"username":"sixteen","disabled":1}`,              // as MySQL's JSON_OBJECT writes status = 0
			}, "\n")
			rep, _, err := runImport(t, s, input, "-", "--batch", "2")
			if err == nil || !strings.Contains(err.Error(), "8 line(s) could not be imported") {
				t.Fatalf("err = %v, want a failure naming 8 lines", err)
			}
			var failed []int
			for _, f := range rep.Failed {
				failed = append(failed, f.Line)
				if strings.Contains(f.Reason, "hunter2") || strings.Contains(f.Reason, "5f4dcc3b") {
					t.Errorf("line %d's reason repeats a secret: %s", f.Line, f.Reason)
				}
			}
			if fmt.Sprint(failed) != "[3 6 7 8 9 10 11 12]" {
				t.Fatalf("failed lines %v (%+v), want 3 and 6 to 12", failed, rep.Failed)
			}
			for _, want := range map[int]string{6: "unknown password hash format", 7: "work bound", 8: "email", 9: "phone",
				10: "username", 11: "totp_secret", 12: `unknown field "password"`} {
				found := false
				for _, f := range rep.Failed {
					found = found || strings.Contains(f.Reason, want)
				}
				if !found {
					t.Errorf("no reason mentions %q: %+v", want, rep.Failed)
				}
			}
			if rep.Imported != 5 || len(rep.Skipped) != 2 || rep.Skipped[0] != (account.ImportSkip{Line: 13, Username: "ONE", Reason: storage.SkipUsernameTaken}) ||
				rep.Skipped[1] != (account.ImportSkip{Line: 15, Username: "fifteen", Reason: storage.SkipEmailTaken}) {
				t.Fatalf("report %+v, want 5 imported, line 13 skipped for its username and 15 for its email", rep)
			}
			if u, err := s.db.GetUserByUsername(t.Context(), "sixteen"); err != nil || !u.Disabled {
				t.Fatalf("sixteen: %v, want imported disabled", err)
			}
			for _, name := range []string{"one", "two", "four", "fourteen"} {
				if _, err := s.db.GetUserByUsername(t.Context(), name); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
			events, err := s.db.ListEvents(t.Context(), storage.EventFilter{Type: "user.imported"})
			if err != nil || len(events) == 0 {
				t.Fatalf("audit: %v %v, want user.imported events", events, err)
			}
			n := 0.0
			for _, e := range events {
				v, _ := e.Detail["imported"].(float64)
				n += v
			}
			if n != 5 {
				t.Fatalf("the audit events count %v imported, want 5", n)
			}
		})
	}
}

// TestImportProgressLines: without a terminal, progress is a plain line
// every --progress-every records, with the total when the input is a file.
func TestImportProgressLines(t *testing.T) {
	s := startServer(t, storagetest.SQLite(t))
	path := filepath.Join(t.TempDir(), "users.jsonl")
	writeUsers(t, path, 25)
	_, stderr, err := runImport(t, s, "", path, "--batch", "10", "--progress-every", "10")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for line := range strings.Lines(stderr) {
		if strings.HasPrefix(line, "imported ") {
			got = append(got, strings.Fields(line)[1])
		}
	}
	if fmt.Sprint(got) != "[10/25 20/25 25/25]" {
		t.Fatalf("progress lines %v, want 10/25 20/25 25/25:\n%s", got, stderr)
	}
}

// TestReplacePasswordHash: the re-hash's compare-and-swap writes only over
// the hash it checked; a hash changed meanwhile (a password set by an
// operator) stays.
func TestReplacePasswordHash(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storagetest.Open(t, d.URL(t))
			u := &storage.User{Username: "ada", PasswordHash: "$2y$10$old"}
			if err := db.CreateUser(t.Context(), u); err != nil {
				t.Fatal(err)
			}
			if ok, err := db.ReplacePasswordHash(t.Context(), u.ID, "$2y$10$stale", "$argon2id$new"); ok || err != nil {
				t.Fatalf("swap over another hash: %v %v, want false", ok, err)
			}
			if got := currentHash(t, db, u.ID); got != "$2y$10$old" {
				t.Fatalf("hash %q after a refused swap", got)
			}
			if ok, err := db.ReplacePasswordHash(t.Context(), u.ID, "$2y$10$old", "$argon2id$new"); !ok || err != nil {
				t.Fatalf("swap over the checked hash: %v %v, want true", ok, err)
			}
			got, _ := db.GetUser(t.Context(), u.ID)
			if got.PasswordHash != "$argon2id$new" || got.Version != u.Version {
				t.Fatalf("after the swap: %q version %d, want the new hash and the version kept", got.PasswordHash, got.Version)
			}
		})
	}
}

// TestImport10000 imports 10 000 generated accounts (phpass hashes, cheap
// to make; the import stores hashes and computes none) on both databases
// and checks that every one arrived. The duration is logged, not asserted.
func TestImport10000(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := startServer(t, d.URL(t))
			path := filepath.Join(t.TempDir(), "users.jsonl")
			writeUsers(t, path, 10_000)
			start := time.Now()
			rep, _, err := runImport(t, s, "", path)
			t.Logf("%s: imported %d accounts in %s", d.Name, rep.Imported, time.Since(start).Round(time.Millisecond))
			if err != nil || rep.Imported != 10_000 || len(rep.Skipped)+len(rep.Failed) != 0 {
				t.Fatalf("import: %v, %d imported, %d skipped, %d failed", err, rep.Imported, len(rep.Skipped), len(rep.Failed))
			}
			users, err := s.db.ListUsers(t.Context())
			if err != nil || len(users) != 10_000 {
				t.Fatalf("%d users stored (%v), want 10000", len(users), err)
			}
			u, _ := s.db.GetUserByUsername(t.Context(), "user-07777")
			if ok, err := login.DefaultArgon2id.Verify(u.PasswordHash, "password user-07777"); !ok || err != nil {
				t.Fatalf("a generated account's hash does not verify: %v %v", ok, err)
			}
		})
	}
}

// BenchmarkImport measures importing 1 000 accounts into SQLite.
func BenchmarkImport(b *testing.B) {
	path := filepath.Join(b.TempDir(), "users.jsonl")
	writeUsers(b, path, 1000)
	f, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		db := storagetest.Open(b, storagetest.SQLite(b))
		svc := account.New(account.Config{DB: db})
		b.StartTimer()
		rep, err := svc.Import(context.Background(), account.Actor{Operator: "bench"}, bytes.NewReader(f), account.ImportOptions{})
		if err != nil || rep.Imported != 1000 {
			b.Fatalf("%v %+v", err, rep)
		}
	}
}

// writeUsers writes n accounts "user-00000"… with password "password
// <username>", hashed with phpass $P$ at its lowest count (2^7 MD5s):
// fast to make, and a format the import accepts.
func writeUsers(t testing.TB, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range n {
		name := fmt.Sprintf("user-%05d", i)
		fmt.Fprintf(w, `{"username":%q,"email":"%s@example.com","roles":["member"],"attributes":{"n":%d},"password_hash":%q}`+"\n",
			name, name, i, phpassP("password "+name, fmt.Sprintf("%08d", i)))
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
	if _, err := passhash.Scheme(phpassP("x", "saltsalt")); err != nil {
		t.Fatalf("the generator makes hashes the import refuses: %v", err)
	}
}

// phpassP is phpass's portable hash with count 2^7 and an 8-character salt.
func phpassP(password, salt string) string {
	const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	sum := md5.Sum([]byte(salt + password))
	for range 1 << 7 {
		sum = md5.Sum(append(sum[:], password...))
	}
	out := []byte("$P$5" + salt)
	for i := 0; i < len(sum); i += 3 {
		v, n := uint(sum[i]), 2
		if i+1 < len(sum) {
			v, n = v|uint(sum[i+1])<<8, 3
		}
		if i+2 < len(sum) {
			v, n = v|uint(sum[i+2])<<16, 4
		}
		for j := range n {
			out = append(out, itoa64[(v>>(6*j))&0x3f])
		}
	}
	return string(out)
}
