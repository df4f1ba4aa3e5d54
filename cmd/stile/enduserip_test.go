package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stile-id/stile/login"
)

// TestDirectEndUserIPFailsClosed attacks the direct mode's X-End-User-IP
// (issue 9, item 5): a value that is not exactly one address — with a
// port, a list, brackets, a zone, garbage, empty, or two header lines —
// is a 400 before any password is checked, never "no address" (which
// would move the end user into the backend's shared bucket). A valid one
// is the source address the per-address limits count.
func TestDirectEndUserIPFailsClosed(t *testing.T) {
	runHeadless(t, []hscenario{{"Malformed", testEndUserIPMalformed}, {"Counted", testEndUserIPCounted}})
}

// dmRaw posts to /headless/<step> with the X-End-User-IP lines given
// verbatim (an empty one included), as a buggy or hostile backend might.
func (h *hfixture) dmRaw(t *testing.T, step string, body any, endUser ...string) apiResult {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, h.s.URL+"/headless/"+step, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for _, v := range endUser {
		req.Header.Add("X-End-User-IP", v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := apiResult{status: resp.StatusCode, header: resp.Header}
	json.NewDecoder(resp.Body).Decode(&r.body)
	return r
}

var malformedEndUser = [][]string{
	{"192.0.2.1:80"}, {"192.0.2.1, 192.0.2.2"}, {"[2001:db8::1]"}, {"fe80::1%eth0"}, {"junk"}, {""}, {"192.0.2.1", "192.0.2.2"},
}

func testEndUserIPMalformed(t *testing.T, h *hfixture) {
	c := h.dmAdd(t, "cms")
	creds := map[string]string{"username": "alice", "password": h.alice.password, "apiKey": c.apiKey}
	for _, bad := range malformedEndUser {
		before := h.s.hasher.verifies.Load()
		r := h.dmRaw(t, "authenticate", creds, bad...)
		if expect(t, "X-End-User-IP "+strconv.Quote(strings.Join(bad, "\n")), r, http.StatusBadRequest,
			string(login.CodeInvalidRequest)); !strings.Contains(r.str("message"), "X-End-User-IP") {
			t.Fatalf("the refusal does not say what is wrong: %v", r.body)
		}
		if n := h.s.hasher.verifies.Load() - before; n != 0 {
			t.Fatalf("X-End-User-IP %q: %d passwords checked, want none", bad, n)
		}
	}
	// Positive control: the same credentials with one valid address (IPv6,
	// and IPv4) are checked and pass.
	before := h.s.hasher.verifies.Load()
	expect(t, "a valid IPv6 X-End-User-IP", h.dmRaw(t, "authenticate", creds, "2001:db8::1"), http.StatusOK, "")
	r := h.dmRaw(t, "authenticate", creds, "192.0.2.1")
	expect(t, "a valid IPv4 X-End-User-IP", r, http.StatusOK, "")
	if n := h.s.hasher.verifies.Load() - before; n != 2 {
		t.Fatalf("%d passwords checked for two valid calls, want 2", n)
	}

	// The second step refuses a malformed header too, before the code is
	// looked at: the right code still works afterwards.
	step := map[string]string{"username": "alice", "transactionID": r.str("transactionID"), "authType": login.MethodTOTP,
		"otp": h.s.code(t, h.alice), "apiKey": c.apiKey}
	for _, bad := range malformedEndUser {
		expect(t, "login with X-End-User-IP "+strconv.Quote(strings.Join(bad, "\n")), h.dmRaw(t, "login", step, bad...),
			http.StatusBadRequest, string(login.CodeInvalidRequest))
	}
	h.dmTokens(t, c, h.dmRaw(t, "login", step, "192.0.2.1"), h.alice, "pwd otp mfa")
}

func testEndUserIPCounted(t *testing.T, h *hfixture) {
	// Wrong passwords under many names from one reported address end in
	// 429 for that address, whatever the name; the backend's own address
	// (no header) and another reported address are not held back. So the
	// limits count the address in X-End-User-IP, not the backend's.
	c := h.dmAdd(t, "cms")
	const from, other = "203.0.113.77", "203.0.113.78"
	auth := func(username, password string, endUser ...string) apiResult {
		return h.dmRaw(t, "authenticate", map[string]string{"username": username, "password": password, "apiKey": c.apiKey}, endUser...)
	}
	locked := false
	for i := 0; i < 40 && !locked; i++ {
		r := auth("guess"+strconv.Itoa(i), "nope", from)
		switch r.status {
		case http.StatusTooManyRequests:
			locked = true
		case http.StatusUnauthorized:
		default:
			t.Fatalf("wrong password %d from %s: %d %v", i, from, r.status, r.body)
		}
	}
	if !locked {
		t.Fatalf("40 wrong passwords from %s were never throttled", from)
	}
	expect(t, "the right password from the throttled address", auth("emma", h.emma.password, from),
		http.StatusTooManyRequests, string(login.CodeThrottled))
	expect(t, "the right password from another address", auth("emma", h.emma.password, other), http.StatusOK, "")
	expect(t, "the right password without the header", auth("emma", h.emma.password), http.StatusOK, "")
}
