package storage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestDropHandover: a refused ticket is burnt with its session, once, and
// then redeems nothing; another session's ticket is untouched (the positive
// control). On SQLite and PostgreSQL.
func TestDropHandover(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newStoreFixture(t, d)
			u := mustUser(t, f.db, "alice")
			refused, kept := mustSession(t, f, u.ID), mustSession(t, f, u.ID)
			for s, ticket := range map[*storage.Session]string{refused: "t-refused", kept: "t-kept"} {
				if err := f.db.SetHandover(ctx, s.ID, []byte(ticket), f.clock.Now().Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.db.DropHandover(ctx, []byte("t-refused")); err != nil {
				t.Fatalf("drop: %v", err)
			}
			if err := f.db.DropHandover(ctx, []byte("t-refused")); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("drop again: %v, want ErrNotFound", err)
			}
			if _, err := f.db.ClaimHandover(ctx, []byte("t-refused"), []byte("c")); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("claim a dropped ticket: %v", err)
			}
			if cur, err := f.db.GetSession(ctx, refused.ID); err != nil || !cur.EndedAt.Valid {
				t.Fatalf("the dropped ticket's session is not ended: %+v, %v", cur, err)
			}
			got, err := f.db.ClaimHandover(ctx, []byte("t-kept"), []byte("c-kept"))
			if err != nil || got.ID != kept.ID {
				t.Fatalf("the other session's ticket: %+v, %v", got, err)
			}
		})
	}
}
