package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stile-id/stile/login"
)

// Concurrent guesses against the lockout (lockout_test.go): reserved
// before they are evaluated, on one instance and on two over one
// PostgreSQL.

// TestLockoutInstances: the reservations hold across two instances on one
// PostgreSQL, each request going to the other instance.
func TestLockoutInstances(t *testing.T) {
	c := startCluster(t, lockoutConfig)
	h := c.h
	t.Run("ConcurrentPasswords", func(t *testing.T) { testConcurrentPasswords(t, h, c.servers) })
	t.Run("ConcurrentCodes", func(t *testing.T) { testConcurrentCodes(t, h, c.servers) })
}

// burst posts n JSON bodies at once to the JSON login API from the custom
// login page and returns the answers.
func burst(t *testing.T, h *hfixture, path string, n int, body map[string]string) []apiResult {
	t.Helper()
	out := make([]apiResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			b, _ := json.Marshal(body)
			req, _ := http.NewRequest(http.MethodPost, h.s.URL+path, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Origin", customOrigin)
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			out[i] = apiResult{status: resp.StatusCode, header: resp.Header}
			json.NewDecoder(resp.Body).Decode(&out[i].body)
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func statuses(rs []apiResult) map[int]int {
	n := map[int]int{}
	for _, r := range rs {
		n[r.status]++
	}
	return n
}

func verifies(instances []*server) int64 {
	var n int64
	for _, s := range instances {
		n += s.hasher.verifies.Load()
	}
	return n
}

// testConcurrentPasswords: 16 wrong passwords for one account from one
// source at once. Before, the lock was checked, the hash ran, and the
// failure was counted afterwards: 9–16 were evaluated where 5 are allowed.
// Now each is reserved first: at most 5 reach argon2id, the rest get 429.
func testConcurrentPasswords(t *testing.T, h *hfixture, instances []*server) {
	b := newBrowser(t, h.s)
	arID, az := h.handoff(t, b)
	before := verifies(instances)
	rs := burst(t, h, "/login/api/authenticate", 16, h.authBody(arID, "alice", "wrong"))
	evaluated, n := verifies(instances)-before, statuses(rs)
	if evaluated > 5 || evaluated < 1 || int64(n[http.StatusUnauthorized]) != evaluated {
		t.Fatalf("%d password checks ran for 16 concurrent guesses (answers %v), want at most 5, one per 401", evaluated, n)
	}
	if n[http.StatusTooManyRequests]+n[http.StatusServiceUnavailable] != 16-n[http.StatusUnauthorized] || n[http.StatusTooManyRequests] < 11 {
		t.Fatalf("answers %v: want every guess beyond the 5 refused with 429", n)
	}
	// Positive control: once the lock ends the owner signs in.
	h.s.clock.Advance(31 * time.Second)
	r := h.authenticate(t, arID, h.alice)
	expect(t, "right password after the lock", r, http.StatusOK, "")
	h.finishAPI(t, b, az, h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": h.s.code(t, h.alice)}))
}

// testConcurrentCodes: 16 wrong codes at once on one transaction. A
// wrong-code slot is reserved before each code is checked, so at most
// MaxOTPFailures (5) are evaluated: four answer 403 with distinct tries
// left, the fifth kills the transaction, the rest are refused.
func testConcurrentCodes(t *testing.T, h *hfixture, instances []*server) {
	h.s.clock.Advance(31 * time.Second) // a fresh TOTP step, past any lock of an earlier scenario
	arID, _ := h.handoff(t, newBrowser(t, h.s))
	r := h.authenticate(t, arID, h.alice)
	expect(t, "password", r, http.StatusOK, "")
	tx := r.str("transactionID")
	logged := func() int { // the code step's evaluated failures, as the server logs them
		n := 0
		for _, s := range instances {
			for _, line := range strings.Split(s.logs.String(), "\n") {
				if strings.Contains(line, `msg="login failed"`) && strings.Contains(line, "transaction="+tx) {
					n++
				}
			}
		}
		return n
	}
	before := logged()
	rs := burst(t, h, "/login/api/verify", 16, map[string]string{"transactionID": tx, "otp": wrongCode(h.s.code(t, h.alice))})
	left := map[float64]bool{}
	for _, r := range rs {
		switch r.status {
		case http.StatusForbidden:
			tl, _ := r.body["triesLeft"].(float64)
			if tl < 1 || tl > 4 || left[tl] {
				t.Fatalf("403 with triesLeft %v (seen %v)", r.body["triesLeft"], left)
			}
			left[tl] = true
		case http.StatusGone, http.StatusTooManyRequests:
		default:
			t.Fatalf("a wrong code answered %d %v", r.status, r.body)
		}
	}
	if n := logged() - before; n > 5 || n < 1 {
		t.Fatalf("%d wrong codes were evaluated of 16 concurrent ones, want at most 5 (answers %v)", n, statuses(rs))
	}
	expect(t, "right code on the spent transaction", h.call(t, "/login/api/verify", customOrigin,
		map[string]string{"transactionID": tx, "otp": h.s.code(t, h.alice)}), http.StatusGone, string(login.CodeExpired))
	// Positive control: after the pair's lock, a new transaction signs in.
	h.s.clock.Advance(31 * time.Second)
	b := newBrowser(t, h.s)
	arID, az := h.handoff(t, b)
	r = h.authenticate(t, arID, h.alice)
	expect(t, "password after the lock", r, http.StatusOK, "")
	h.finishAPI(t, b, az, h.call(t, "/login/api/verify", customOrigin, map[string]string{"transactionID": r.str("transactionID"), "otp": h.s.code(t, h.alice)}))
}
