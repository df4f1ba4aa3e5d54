package keys_test

import (
	"bytes"
	"database/sql"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stile-id/stile/internal/clocktest"
	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

const day = 24 * time.Hour

// TestDue: which active keys the automatic rotation replaces, by how long
// they have signed and what already waits to replace them.
func TestDue(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) sql.NullTime { return sql.NullTime{Time: now.Add(-d), Valid: true} }
	active := func(id, alg string, dflt bool, signing time.Duration) storage.SigningKey {
		return storage.SigningKey{ID: id, Algorithm: alg, State: storage.KeyActive, Default: dflt, CreatedAt: now.Add(-400 * day),
			ActivatedAt: at(signing)}
	}
	next := func(id, alg string, dflt bool) storage.SigningKey {
		return storage.SigningKey{ID: id, Algorithm: alg, State: storage.KeyNext, Default: dflt, ActivateAfter: at(-time.Hour)}
	}
	retired := storage.SigningKey{ID: "old", Algorithm: "RS256", State: storage.KeyRetired, ActivatedAt: at(300 * day)}
	period := 90 * day
	for _, tc := range []struct {
		name   string
		stored []storage.SigningKey
		period time.Duration
		want   []string
	}{
		{"young default", []storage.SigningKey{active("d", "RS256", true, 89*day)}, period, nil},
		{"just under the period", []storage.SigningKey{active("d", "RS256", true, period-time.Second)}, period, nil},
		{"exactly the period", []storage.SigningKey{active("d", "RS256", true, period)}, period, []string{"d"}},
		{"old default", []storage.SigningKey{active("d", "RS256", true, 91*day), retired}, period, []string{"d"}},
		{"off", []storage.SigningKey{active("d", "RS256", true, 400*day)}, 0, nil},
		{"negative is off", []storage.SigningKey{active("d", "RS256", true, 400*day)}, -time.Hour, nil},
		{"a successor already waits", []storage.SigningKey{next("n", "RS256", true), active("d", "RS256", true, 91*day)}, period, nil},
		{"an algorithm switch replaces the default", []storage.SigningKey{next("n", "ES256", true), active("d", "RS256", true, 91*day)},
			period, nil},
		{"a pinned key's successor does not replace the default",
			[]storage.SigningKey{next("n", "EdDSA", false), active("d", "RS256", true, 91*day), active("p", "EdDSA", false, 91*day)},
			period, []string{"d"}},
		{"old pinned key beside a young default",
			[]storage.SigningKey{active("d", "RS256", true, 10*day), active("p", "ES256", false, 91*day)}, period, []string{"p"}},
		{"both old", []storage.SigningKey{active("d", "ES256", true, 100*day), active("p", "RS256", false, 95*day)},
			period, []string{"d", "p"}},
		{"no activation time: its creation counts",
			[]storage.SigningKey{{ID: "d", Algorithm: "RS256", State: storage.KeyActive, Default: true, CreatedAt: now.Add(-91 * day)}},
			period, []string{"d"}},
		{"a retired key is never due", []storage.SigningKey{retired}, period, nil},
	} {
		var got []string
		for _, k := range keys.Due(tc.stored, now, tc.period) {
			got = append(got, k.ID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: due %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestRotateDue: on one database, several managers (instances) rotate at
// once when the default is due: exactly one successor is stored, of the
// same algorithm, as the default, signing after RotationOverlap; before the
// period nothing happens; once it signs, the next period starts from its
// activation.
func TestRotateDue(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			url := d.URL(t)
			clock := clocktest.New(time.Now())
			master, _ := keys.NewMaster(bytes.Repeat([]byte{9}, 32))
			var managers []*keys.Manager
			for range 3 {
				db := storagetest.Open(t, url, storage.WithClock(clock.Now))
				managers = append(managers, keys.NewManager(db, keys.NewSealer(master), clock.Now, 10*time.Minute))
			}
			if err := managers[0].Ensure(ctx, "ES256"); err != nil {
				t.Fatal(err)
			}
			first, _ := managers[0].Active(ctx)
			rotateAll := func() []keys.Rotation {
				t.Helper()
				var mu sync.Mutex
				var all []keys.Rotation
				var wg sync.WaitGroup
				for _, m := range managers {
					wg.Go(func() {
						done, err := m.RotateDue(ctx, keys.DefaultRotation)
						if err != nil {
							t.Errorf("rotate: %v", err)
						}
						mu.Lock()
						all = append(all, done...)
						mu.Unlock()
					})
				}
				wg.Wait()
				return all
			}
			count := func(state string) int {
				t.Helper()
				stored, err := storagetest.Open(t, url).ListSigningKeys(ctx)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, k := range stored {
					if k.State == state {
						n++
					}
				}
				return n
			}

			clock.Advance(keys.DefaultRotation - time.Minute)
			if got := rotateAll(); len(got) != 0 || count(storage.KeyNext) != 0 {
				t.Fatalf("a minute before the period: %d rotations, %d next keys; want none", len(got), count(storage.KeyNext))
			}
			clock.Advance(2 * time.Minute)
			got := rotateAll()
			if len(got) != 1 || count(storage.KeyNext) != 1 {
				t.Fatalf("three instances past the period: %d rotations, %d next keys; want exactly one", len(got), count(storage.KeyNext))
			}
			n := got[0].Next
			if n.Algorithm != "ES256" || !n.Default || got[0].Replaces.ID != first.ID ||
				!n.ActivateAfter.Time.Equal(clock.Now().Add(keys.RotationOverlap).Truncate(time.Microsecond)) {
				t.Fatalf("rotation %+v replacing %s: want a default ES256 key replacing %s, signing after %s",
					n, got[0].Replaces.ID, first.ID, keys.RotationOverlap)
			}
			if again := rotateAll(); len(again) != 0 || count(storage.KeyNext) != 1 {
				t.Fatalf("passes while the successor waits made %d more", len(again))
			}

			clock.Advance(keys.RotationOverlap)
			for _, m := range managers {
				s, err := m.Active(ctx)
				if err != nil || s.ID != n.ID {
					t.Fatalf("after the overlap an instance signs with %v (%v), want %s", s, err, n.ID)
				}
			}
			if count(storage.KeyRetired) != 1 || count(storage.KeyActive) != 1 {
				t.Fatalf("after the overlap: %d retired, %d active; want the old key retired", count(storage.KeyRetired), count(storage.KeyActive))
			}
			// The new key's period runs from its activation, not its creation.
			clock.Advance(keys.DefaultRotation - keys.RotationOverlap)
			if got := rotateAll(); len(got) != 0 {
				t.Fatalf("90 days after the successor was created, a day short of its signing period: %d rotations", len(got))
			}
			clock.Advance(keys.RotationOverlap)
			if got := rotateAll(); len(got) != 1 || got[0].Replaces.ID != n.ID {
				t.Fatalf("90 days after the successor started signing: %+v, want it rotated once", got)
			}
		})
	}
}
