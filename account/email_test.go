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

// TestChangeEmail: a user's own change of address tells the old address
// and the new one, refuses another account's address (ignoring case) and
// a malformed one, and is in the trail.
func TestChangeEmail(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			clock := clocktest.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
			db := storagetest.Open(t, d.URL(t), storage.WithClock(clock.Now))
			var to []string // the addresses notified
			svc := account.New(account.Config{DB: db, Hasher: tagHasher{}, Sealer: sealer{}, RecoveryKey: []byte("k"),
				Notify: func(_ context.Context, u *storage.User, _, _ string) { to = append(to, u.Email) }})
			var users []*storage.User
			for _, n := range []string{"alice", "bob"} {
				c, err := svc.Create(ctx, operator, account.NewUser{Username: n, Email: n + "@example.com", Password: "a long password"})
				if err != nil {
					t.Fatal(err)
				}
				users = append(users, c.User)
			}
			alice, self := users[0], account.Actor{UserID: users[0].ID}
			for email, want := range map[string]bool{"BOB@example.com": false, "alice@example.com": true, "carol@example.com": true} {
				if free, err := svc.EmailFree(ctx, alice.ID, email); err != nil || free != want {
					t.Errorf("EmailFree(%s) = %v %v, want %v", email, free, err, want)
				}
			}
			if _, err := svc.ChangeEmail(ctx, self, alice.ID, "Bob@Example.com"); !errors.Is(err, account.ErrConflict) {
				t.Errorf("another account's address: %v, want a conflict", err)
			}
			if _, err := svc.ChangeEmail(ctx, self, alice.ID, "Alice <a@example.com>"); !errors.Is(err, account.ErrInvalid) {
				t.Errorf("a malformed address: %v, want invalid", err)
			}
			if len(to) != 0 {
				t.Fatalf("refused changes notified %v", to)
			}
			u, err := svc.ChangeEmail(ctx, self, alice.ID, "alice@new.example")
			if err != nil || u.Email != "alice@new.example" {
				t.Fatalf("change: %v %+v", err, u)
			}
			if len(to) != 2 || to[0] != "alice@example.com" || to[1] != "alice@new.example" {
				t.Errorf("notified %v, want the old address then the new", to)
			}
			evs, err := db.ListEvents(ctx, storage.EventFilter{UserID: alice.ID, Type: account.EventEmailChanged})
			if err != nil || len(evs) != 3 || evs[0].Reason != "conflict" || evs[1].Reason != "invalid" || evs[2].Outcome != storage.Success {
				t.Errorf("trail %+v %v", evs, err)
			}
		})
	}
}
