package op

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

type countedRefusals struct {
	noCounter
	mu   sync.Mutex
	busy int
}

func (c *countedRefusals) Throttled(limit string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if limit == "busy" {
		c.busy++
	}
}

// With every slot taken for longer than the wait, a request gets 503 with
// Retry-After and an RFC 6749-shaped error, and is counted; once a slot is
// free, requests run again.
func TestAdmission(t *testing.T) {
	count := &countedRefusals{}
	a := newAdmission(Admission{Slots: 1, Wait: time.Millisecond}, count)
	entered, release := make(chan struct{}), make(chan struct{})
	h := a.handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("hold") != "" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusOK)
	}))
	serve := func(target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, target, nil))
		return rec
	}
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- serve("/oauth/token?hold=1") }()
	<-entered

	rec := serve("/oauth/token")
	var body struct{ Error string }
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" || body.Error != temporarilyUnavailable {
		t.Fatalf("all slots taken: %d Retry-After %q %s; want 503, 1, temporarily_unavailable",
			rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if count.busy != 1 {
		t.Errorf("refusals counted: %d, want 1", count.busy)
	}
	close(release)
	if held := <-done; held.Code != http.StatusOK {
		t.Fatalf("the request holding the slot: %d", held.Code)
	}
	if rec := serve("/oauth/token"); rec.Code != http.StatusOK { // the positive control
		t.Fatalf("a free slot: %d, want 200", rec.Code)
	}
}

// A waiter gets the slot as soon as it is free, within its wait.
func TestAdmissionWaits(t *testing.T) {
	a := newAdmission(Admission{Slots: 1, Wait: time.Minute}, noCounter{})
	entered, release := make(chan struct{}), make(chan struct{})
	h := a.handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("hold") != "" {
			entered <- struct{}{}
			<-release
		}
	}))
	go h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/userinfo?hold=1", nil))
	<-entered
	got := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/userinfo", nil))
		got <- rec.Code
	}()
	close(release)
	if code := <-got; code != http.StatusOK {
		t.Fatalf("the waiter: %d, want 200", code)
	}
	if d := DefaultAdmission(); d.Slots < 4 || d.Wait != 5*time.Second {
		t.Errorf("DefaultAdmission() = %+v", d)
	}
}
