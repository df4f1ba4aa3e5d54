package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestSignupLimits: what an anonymous caller can make stile store and send
// through sign-up is bounded: pending sign-ups per source address (another
// address still gets on), and mail per destination address (the answer
// stays the same, the mail stops), on SQLite and PostgreSQL.
func TestSignupLimits(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			limits := login.DefaultLimits
			limits.SignupsPerAddress = storage.Rate{Limit: 3, Per: time.Hour}
			f := newSignupFixture(t, d.URL(t), trustLoopback, func(c *appConfig) { c.LoginLimits = &limits })
			b := newBrowser(t, f.s)
			from := func(addr, email string) *page {
				form, _ := f.signupForm(t, b, f.rp)
				action, values := form.form(t)
				values.Set("username", strings.Split(email, "@")[0])
				values.Set("email", email)
				values.Set("password", "a long passphrase")
				values.Set("confirm", "a long passphrase")
				return b.post(form.url.ResolveReference(action).String(), values, "X-Forwarded-For", addr)
			}
			// The same destination, from three addresses: three mails a
			// minute get through (Limits.SendsPerMinute), the fourth answer
			// is the same page without a mail.
			for i, addr := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"} {
				if p := from(addr, "rita@example.com"); p.status != http.StatusOK || !strings.Contains(p.body, "We sent a 6-digit code to rita@example.com") {
					t.Fatalf("sign-up %d: %d\n%s", i+1, p.status, p.body)
				}
			}
			if n := f.mail.count("rita@example.com"); n != 3 {
				t.Fatalf("rita got %d mails from four sign-ups in a minute, want 3", n)
			}
			// One address: three sign-ups an hour, then 429 with Retry-After.
			for i := range 3 {
				if p := from("203.0.113.9", "sam"+strconv.Itoa(i)+"@example.com"); p.status != http.StatusOK {
					t.Fatalf("sign-up %d from one address: %d", i+1, p.status)
				}
			}
			p := from("203.0.113.9", "sam3@example.com")
			if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || f.mail.count("sam3@example.com") != 0 {
				t.Fatalf("the fourth sign-up from one address: %d, Retry-After %q", p.status, p.header.Get("Retry-After"))
			}
			if p := from("203.0.113.10", "sam3@example.com"); p.status != http.StatusOK || f.mail.count("sam3@example.com") != 1 {
				t.Fatalf("the same sign-up from another address: %d", p.status)
			}
			n, err := f.s.db.CountRows(t.Context())
			if err != nil || n["signups"] != 8 {
				t.Fatalf("%d pending sign-ups stored (%v), want 8", n["signups"], err)
			}
			// Cleanup deletes them once they expire.
			f.s.clock.Advance(11 * time.Minute)
			f.s.maintain(t.Context())
			if n, _ := f.s.db.CountRows(t.Context()); n["signups"] != 0 {
				t.Fatalf("%d expired sign-ups left after maintenance", n["signups"])
			}
		})
	}
}
