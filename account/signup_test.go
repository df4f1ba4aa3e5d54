package account_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/internal/clocktest"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// brokenSealer cannot seal: the store of a new user's authenticator fails.
type brokenSealer struct{ sealer }

func (brokenSealer) Seal([]byte, []byte) ([]byte, error) { return nil, errors.New("sealing is broken") }

// TestCreateWithTOTP: an account a sign-up creates comes with the
// authenticator it confirmed (its confirming step spent) and is audited
// with the door; if the authenticator cannot be stored, no account is
// left without it. On SQLite and PostgreSQL.
func TestCreateWithTOTP(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			clock := clocktest.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
			db := storagetest.Open(t, d.URL(t), storage.WithClock(clock.Now))
			var sent []string
			cfg := account.Config{DB: db, Hasher: tagHasher{}, Sealer: sealer{}, Issuer: "https://id.example.com",
				Notify: func(_ context.Context, u *storage.User, subject, _ string) { sent = append(sent, subject) }}
			f := fixture{db: db, clock: clock, svc: account.New(cfg), sent: &sent}
			signup := account.Actor{ClientID: "app", Remote: "192.0.2.7"}
			n := account.NewUser{Username: "zoe", Email: "zoe@example.com", Password: "a long passphrase", Roles: []string{"member"},
				Attributes: storage.Attributes{"plan": "free"}, SkipEnrollLink: true, TOTPSecret: "JBSWY3DPEHPK3PXP", TOTPStep: 59000000, Via: "signup"}

			broken := cfg
			broken.Sealer = brokenSealer{}
			if _, err := account.New(broken).Create(ctx, signup, n); err == nil {
				t.Fatal("created an account whose authenticator could not be stored")
			}
			if _, err := db.GetUserByUsername(ctx, "zoe"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("the account without its authenticator is still there: %v", err)
			}

			c, err := f.svc.Create(ctx, signup, n)
			if err != nil {
				t.Fatal(err)
			}
			got, err := db.GetTOTP(ctx, c.User.ID)
			if err != nil || string(got.SecretSealed) != "JBSWY3DPEHPK3PXP" || got.LastStep != 59000000 {
				t.Fatalf("the new account's authenticator: %+v, %v", got, err)
			}
			if len(sent) != 0 {
				t.Fatalf("a new account's own authenticator was notified: %v", sent)
			}
			evs := events(t, f, "user.created")
			last := evs[len(evs)-1]
			if last.Outcome != storage.Success || last.UserID != c.User.ID || last.ActorClient != "app" || last.Detail["via"] != "signup" || last.Detail["totp"] != true {
				t.Fatalf("the audit event: %+v", last)
			}
		})
	}
}
