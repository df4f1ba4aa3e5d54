package passhash_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/stile-id/stile/internal/passhash"
)

// fixture is one line of testdata/import/users.jsonl: a hash made by the
// originating system's own code (see testdata/import/README.md).
type fixture struct {
	Username string `json:"username"`
	Hash     string `json:"password_hash"`
}

func fixtures(t *testing.T) []fixture {
	t.Helper()
	f, err := os.Open("../../testdata/import/users.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fixture
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var x fixture
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	if len(out) < 12 {
		t.Fatalf("%d fixtures, want one per format", len(out))
	}
	return out
}

// TestFixtures: each fixture verifies with its own password and not with
// a wrong one, nor with the password of its neighbour.
func TestFixtures(t *testing.T) {
	for _, x := range fixtures(t) {
		t.Run(x.Username, func(t *testing.T) {
			if _, err := passhash.Scheme(x.Hash); err != nil {
				t.Fatalf("Scheme: %v", err)
			}
			pw := "correct horse " + x.Username
			if ok, err := passhash.Verify(x.Hash, pw); !ok || err != nil {
				t.Fatalf("right password: %v, %v; want true", ok, err)
			}
			for _, wrong := range []string{pw + "!", "correct horse", strings.ToUpper(pw), ""} {
				if ok, err := passhash.Verify(x.Hash, wrong); ok || err != nil {
					t.Fatalf("wrong password %q: %v, %v; want false", wrong, ok, err)
				}
			}
		})
	}
}

// TestTampered: changing one character of the hash part makes the right
// password fail (or the hash unreadable), never pass.
func TestTampered(t *testing.T) {
	for _, x := range fixtures(t) {
		t.Run(x.Username, func(t *testing.T) {
			h := []byte(x.Hash)
			i := len(h) - 3
			if h[i] == 'A' {
				h[i] = 'B'
			} else {
				h[i] = 'A'
			}
			if ok, _ := passhash.Verify(string(h), "correct horse "+x.Username); ok {
				t.Fatalf("tampered hash %s accepted", h)
			}
		})
	}
}

// TestPublishedVectors checks the phpass and Drupal code against hashcat's
// published example hashes (modes 400 and 7900, password "hashcat"),
// made by implementations other than the fixtures'.
func TestPublishedVectors(t *testing.T) {
	for _, h := range []string{
		"$P$984478476IagS59wHZvyQMArzfx58u.",
		"$S$C33783772bRXEx1aCsvY.dqgaaSu76XmVlKrW9Qu8IQlvxHlmzLf",
	} {
		if ok, err := passhash.Verify(h, "hashcat"); !ok || err != nil {
			t.Errorf("%s: %v, %v; want true", h, ok, err)
		}
		if ok, _ := passhash.Verify(h, "hashcat1"); ok {
			t.Errorf("%s accepts a wrong password", h)
		}
	}
}

// TestBounds: a hash asking for more work than Limits is refused by
// Scheme (at import) and by Verify (at sign-in) with ErrTooCostly; the
// same format at an allowed cost is accepted.
func TestBounds(t *testing.T) {
	cheap, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	bcryptAt := func(cost string) string { return string(cheap[:4]) + cost + string(cheap[6:]) }
	tests := []struct {
		name, ok, over string
	}{
		{"bcrypt", bcryptAt("14"), bcryptAt("15")},
		{"wordpress", "$wp" + bcryptAt("14"), "$wp" + bcryptAt("31")},
		{"pbkdf2", "pbkdf2_sha256$3000000$salt$3z4Vjkj7wCe8v0HWIX+ODZm2WAlUdXIBZ0Fh8ky23n8=",
			"pbkdf2_sha256$3000001$salt$3z4Vjkj7wCe8v0HWIX+ODZm2WAlUdXIBZ0Fh8ky23n8="},
		{"phpass", "$P$I" + strings.Repeat("a", 30), "$P$J" + strings.Repeat("a", 30)},
		{"phpass 2^30", "$P$I" + strings.Repeat("a", 30), "$P$S" + strings.Repeat("a", 30)},
		{"drupal", "$S$I" + strings.Repeat("a", 51), "$S$J" + strings.Repeat("a", 51)},
		{"argon2 memory", "$argon2id$v=19$m=131072,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 22),
			"$argon2id$v=19$m=131073,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 22)},
		{"argon2 passes", "$argon2id$v=19$m=32768,t=10,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 22),
			"$argon2id$v=19$m=32768,t=11,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 22)},
		{"argon2 memory×passes", "$argon2id$v=19$m=131072,t=4,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 22),
			"$argon2id$v=19$m=131072,t=5,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 22)},
		{"argon2 lanes", "argon2$argon2id$v=19$m=65536,t=1,p=16$c2FsdHNhbHQ$" + strings.Repeat("A", 22),
			"argon2$argon2id$v=19$m=65536,t=1,p=17$c2FsdHNhbHQ$" + strings.Repeat("A", 22)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := passhash.Scheme(tc.ok); err != nil {
				t.Fatalf("at the bound: %v", err)
			}
			if _, err := passhash.Scheme(tc.over); !errors.Is(err, passhash.ErrTooCostly) {
				t.Fatalf("Scheme over the bound: %v, want ErrTooCostly", err)
			}
			if _, err := passhash.Verify(tc.over, "pw"); !errors.Is(err, passhash.ErrTooCostly) {
				t.Fatalf("Verify over the bound: %v, want ErrTooCostly", err)
			}
		})
	}
}

// TestMalformed: strings that are no hash, or a damaged one, are errors
// (never a match); the error text does not repeat the hash.
func TestMalformed(t *testing.T) {
	for _, h := range []string{
		"", "plaintext", "5f4dcc3b5aa765d61d8327deb882cf99", "$2y$10$short", "$2y$99$" + strings.Repeat("a", 53),
		"$P$" + strings.Repeat("a", 30), "$P$6" + strings.Repeat("a", 31), "$P$1" + strings.Repeat("a", 30),
		"$S$D" + strings.Repeat("a", 40), "$S$D" + strings.Repeat("!", 51),
		"pbkdf2_sha256$x$salt$hash", "pbkdf2_sha256$1000$salt$c2hvcnQ=", "pbkdf2_sha256$1000$$3z4Vjkj7wCe8v0HWIX+ODZm2WAlUdXIBZ0Fh8ky23n8=",
		"$argon2id$v=16$m=65536,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 22),
		"$argon2id$v=19$m=4,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 22),
		"$argon2id$v=19$m=65536,t=1,p=1$c2FsdHNhbHQ$AAAA",
		"$argon2d$v=19$m=65536,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 22),
		"$argon2id$v=19$m=065536,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 22),
	} {
		_, serr := passhash.Scheme(h)
		ok, verr := passhash.Verify(h, "pw")
		if serr == nil || verr == nil || ok {
			t.Errorf("%q: Scheme %v, Verify %v %v; want errors", h, serr, ok, verr)
			continue
		}
		if !errors.Is(serr, passhash.ErrUnknown) && !errors.Is(serr, passhash.ErrMalformed) {
			t.Errorf("%q: %v, want ErrUnknown or ErrMalformed", h, serr)
		}
		if len(h) > 8 && strings.Contains(serr.Error(), h) {
			t.Errorf("error %q repeats the hash", serr)
		}
	}
}

// TestLongPassword: a password over MaxPassword is wrong without being
// hashed; bcrypt counts only 72 bytes, WordPress's pre-hash all of them.
func TestLongPassword(t *testing.T) {
	long := strings.Repeat("a", 100)
	h, err := bcrypt.GenerateFromPassword([]byte(long[:72]), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := passhash.Verify(string(h), long); !ok {
		t.Error("bcrypt: a password past 72 bytes should match on its first 72, as PHP's does")
	}
	if ok, _ := passhash.Verify(string(h), strings.Repeat("a", passhash.MaxPassword+1)); ok {
		t.Error("a password over MaxPassword matched")
	}
}

func BenchmarkVerify(b *testing.B) {
	f, err := os.ReadFile("../../testdata/import/users.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(f)) {
		var x fixture
		if err := json.Unmarshal([]byte(line), &x); err != nil {
			b.Fatal(err)
		}
		b.Run(x.Username, func(b *testing.B) {
			for b.Loop() {
				passhash.Verify(x.Hash, "correct horse "+x.Username)
			}
		})
	}
}
