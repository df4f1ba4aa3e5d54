package login

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDeviceCookie(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	d := newDevices([]byte("device key"), true, clock)
	w := httptest.NewRecorder()
	d.issue(w, "user-1")
	c := w.Result().Cookies()[0]
	if c.Name != "__Host-stile_device" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" ||
		c.MaxAge != int(DeviceLifetime/time.Second) {
		t.Fatalf("cookie attributes: %+v", c)
	}
	read := func(value string) *Device {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: c.Name, Value: value})
		return d.read(r)
	}
	if dev := read(c.Value); dev == nil || dev.UserID != "user-1" || dev.ID == "" {
		t.Fatalf("a fresh cookie: %+v", dev)
	}
	if dev := read(c.Value).of("user-1"); dev == nil {
		t.Fatal("the cookie does not exempt its own user")
	}
	if dev := read(c.Value).of("user-2"); dev != nil {
		t.Fatal("a cookie for user-1 exempts user-2")
	}
	parts := strings.Split(c.Value, ".")
	forged := "user-2." + parts[1] + "." + parts[2] + "." + parts[3]
	for name, v := range map[string]string{"forged user": forged, "truncated": c.Value[:len(c.Value)-2], "garbage": "x", "empty": ""} {
		if dev := read(v); dev != nil {
			t.Errorf("%s cookie accepted: %+v", name, dev)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(c)
	if newDevices([]byte("another key"), true, clock).read(r) != nil {
		t.Fatal("a cookie MAC'd with another key was accepted")
	}
	now = now.Add(DeviceLifetime + time.Second)
	if dev := read(c.Value); dev != nil {
		t.Fatal("an expired cookie was accepted")
	}
	// Without a key nothing is issued or recognised.
	w = httptest.NewRecorder()
	newDevices(nil, false, clock).issue(w, "user-1")
	if len(w.Result().Cookies()) != 0 {
		t.Fatal("a device cookie without a key")
	}
}

func TestTryAgainIn(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Second: "Try again in 1 second.", 30 * time.Second: "Try again in 30 seconds.", 1500 * time.Millisecond: "Try again in 2 seconds.",
		time.Minute: "Try again in 60 seconds.", 61 * time.Second: "Try again in 2 minutes.", 15 * time.Minute: "Try again in 15 minutes.",
	} {
		if got := tryAgainIn(d); got != want {
			t.Errorf("tryAgainIn(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestLockPolicies(t *testing.T) {
	if ceiling(100, 15*time.Minute)(99) != 0 || ceiling(100, 15*time.Minute)(100) != 15*time.Minute {
		t.Fatal("the account ceiling locks at 100, not before")
	}
	if escalate(20)(19) != 0 || escalate(20)(20) != 30*time.Second || escalate(20)(21) != time.Minute {
		t.Fatal("an address locks at 20 failures, then doubles")
	}
}
