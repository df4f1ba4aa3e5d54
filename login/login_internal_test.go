package login

import (
	"strings"
	"testing"
	"time"
)

func TestArgon2id(t *testing.T) {
	h := Argon2id{Memory: 8 * 1024, Time: 1, Threads: 1} // cheap parameters: this tests the format, not the cost
	a, err := h.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a, "$argon2id$v=19$m=8192,t=1,p=1$") {
		t.Fatalf("PHC string %q", a)
	}
	b, _ := h.Hash("correct horse")
	if a == b {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if ok, err := h.Verify(a, "correct horse"); !ok || err != nil {
		t.Fatalf("right password: %v, %v", ok, err)
	}
	if ok, err := h.Verify(a, "correct horsf"); ok || err != nil {
		t.Fatalf("wrong password: %v, %v", ok, err)
	}
	// Verify reads the parameters from the string: a hash made with other
	// parameters still verifies after the defaults change.
	if ok, _ := DefaultArgon2id.Verify(a, "correct horse"); !ok {
		t.Fatal("verification depends on the verifier's own parameters")
	}
	for _, bad := range []string{"", "$2a$10$bcrypt", "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=18$m=8192,t=1,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA", "$argon2id$v=19$m=8192,t=1,p=1$!!$aGFzaA"} {
		if _, err := h.Verify(bad, "x"); err == nil {
			t.Errorf("Verify(%q) accepted a malformed or weak hash", bad)
		}
	}
}

func TestPasswordPolicy(t *testing.T) {
	for pw, ok := range map[string]bool{
		"":                                       false,
		"seven77":                                false,
		"eight8x8":                               true,
		"eight888":                               false, // on the breached list
		"ünïcödé!":                               true,  // 8 characters, more bytes
		strings.Repeat("x", MaxPasswordLength):   true,
		strings.Repeat("x", MaxPasswordLength+1): false,
	} {
		if err := CheckPasswordPolicy(pw); (err == nil) != ok {
			t.Errorf("CheckPasswordPolicy(%d chars) = %v, want ok=%v", len(pw), err, ok)
		}
	}
}

func TestLockFor(t *testing.T) {
	for failures, want := range map[int]time.Duration{
		0: 0, 4: 0, 5: 30 * time.Second, 6: time.Minute, 7: 2 * time.Minute, 9: 8 * time.Minute,
		10: 15 * time.Minute, 50: 15 * time.Minute, 10000: 15 * time.Minute,
	} {
		if got := lockFor(failures); got != want {
			t.Errorf("lockFor(%d) = %v, want %v", failures, got, want)
		}
	}
}

func TestMatchTOTP(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	now := time.Unix(1_800_000_000, 0) // step 60_000_000; no code near it is 000000
	step := now.Unix() / 30
	code := func(at time.Time) string {
		c, err := TOTPCode(secret, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := []struct {
		name     string
		code     string
		lastStep int64
		want     int64 // 0: refused
	}{
		{"current step", code(now), 0, step},
		{"previous step, for drift", code(now.Add(-30 * time.Second)), 0, step - 1},
		{"next step, for drift", code(now.Add(30 * time.Second)), 0, step + 1},
		{"two steps old", code(now.Add(-60 * time.Second)), 0, 0},
		{"already used step", code(now), step, 0},
		{"step before the last used", code(now.Add(-30 * time.Second)), step, 0},
		{"later step than the last used", code(now.Add(30 * time.Second)), step, step + 1},
		{"wrong code", "000000", 0, 0},
	}
	for _, c := range cases {
		got, ok := matchTOTP(secret, c.code, now, c.lastStep)
		if got != c.want || ok != (c.want != 0) {
			t.Errorf("%s: matchTOTP = %d, %v; want %d", c.name, got, ok, c.want)
		}
	}
}

// The stand-in costs one full hash to verify, like a real hash, and no
// password matches it, though making it hashed nothing.
func TestStandIn(t *testing.T) {
	h := Argon2id{Memory: 8 * 1024, Time: 1, Threads: 1}
	s, err := standIn(h)
	if err != nil {
		t.Fatal(err)
	}
	genuine, _ := h.Hash("x")
	if p, _, sum, err := parsePHC(s); err != nil || p != h || len(sum) != hashLen {
		t.Fatalf("stand-in %q: params %v, %d-byte sum, %v; want those of %q", s, p, len(sum), err, genuine)
	}
	if ok, err := h.Verify(s, ""); ok || err != nil {
		t.Fatalf("the empty password matches the stand-in: %v %v", ok, err)
	}
	if other, _ := standIn(NewPool(h, 1, 0, nil)); other == s {
		t.Fatal("two stand-ins are equal: not random")
	}
}

type heldHasher struct{ release chan struct{} }

func (heldHasher) Hash(string) (string, error) { return "", nil }
func (h heldHasher) Verify(string, string) (bool, error) {
	<-h.release
	return true, nil
}

// An idle pool gives memory back once after its last hash, and not while
// a hash runs.
func TestPoolFreesMemoryWhenIdle(t *testing.T) {
	h := heldHasher{release: make(chan struct{})}
	p := NewPool(h, 2, 0, nil)
	freed := make(chan struct{}, 4)
	p.free = func() { freed <- struct{}{} }
	p.FreeIdle = time.Millisecond

	done := make(chan struct{})
	go func() { p.Verify("", ""); close(done) }()
	for p.InUse() == 0 {
		time.Sleep(time.Millisecond) // wait for the hash to start, not for time to pass
	}
	p.freeIfIdle()
	select {
	case <-freed:
		t.Fatal("memory freed while a hash runs")
	default:
	}
	close(h.release)
	<-done
	select {
	case <-freed:
	case <-time.After(10 * time.Second):
		t.Fatal("an idle pool never freed its memory")
	}

	q := NewPool(heldHasher{release: h.release}, 1, 0, nil) // FreeIdle unset: no timer at all
	q.Verify("", "")
	if q.idle != nil {
		t.Fatal("a pool without FreeIdle armed a timer")
	}
}
