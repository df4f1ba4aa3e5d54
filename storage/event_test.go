package storage_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestEvents runs the audit trail's store tests on SQLite and PostgreSQL.
func TestEvents(t *testing.T) {
	tests := []struct {
		name string
		fn   func(*testing.T, fixture)
	}{
		{"RecordDefaults", testEventDefaults},
		{"Filters", testEventFilters},
		{"Cursor", testEventCursor},
		{"DeleteBefore", testEventDeleteBefore},
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStoreFixture(t, d)) })
			}
		})
	}
}

func record(t *testing.T, f fixture, e storage.Event) storage.Event {
	t.Helper()
	if err := f.db.RecordEvent(ctx, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func ids(events []storage.Event) []int64 {
	var out []int64
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

func list(t *testing.T, f fixture, filter storage.EventFilter) []int64 {
	t.Helper()
	events, err := f.db.ListEvents(ctx, filter)
	if err != nil {
		t.Fatal(err)
	}
	return ids(events)
}

// testEventDefaults: an event gets the store's time, success and an empty
// detail when they are unset, and reads back as written; one without a
// type is refused.
func testEventDefaults(t *testing.T, f fixture) {
	if err := f.db.RecordEvent(ctx, &storage.Event{}); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("an event without a type: %v, want ErrInvalid", err)
	}
	e := record(t, f, storage.Event{Type: "login.password"})
	full := record(t, f, storage.Event{Type: "login.password", Outcome: storage.Failure, Reason: "invalid_credentials",
		ActorUser: "u1", ActorClient: "app", Actor: "cli:root", UserID: "u1", Remote: "192.0.2.1",
		Detail: storage.Attributes{"door": "pages", "amr": []any{"pwd", "otp"}}})
	got, err := f.db.ListEvents(ctx, storage.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || e.ID == 0 || full.ID <= e.ID {
		t.Fatalf("events %v, ids %d %d", got, e.ID, full.ID)
	}
	if g := got[0]; g.Outcome != storage.Success || !g.At.Equal(f.clock.Now().UTC().Truncate(time.Microsecond)) || len(g.Detail) != 0 {
		t.Fatalf("defaults: %+v", g)
	}
	g := got[1]
	if g.Outcome != storage.Failure || g.Reason != "invalid_credentials" || g.ActorUser != "u1" || g.ActorClient != "app" ||
		g.Actor != "cli:root" || g.UserID != "u1" || g.Remote != "192.0.2.1" || g.Detail["door"] != "pages" ||
		len(g.Detail["amr"].([]any)) != 2 {
		t.Fatalf("read back: %+v", g)
	}
}

// testEventFilters: each filter selects exactly its events, and they
// combine.
func testEventFilters(t *testing.T, f fixture) {
	start := f.clock.Now()
	a := record(t, f, storage.Event{Type: "login.password", UserID: "alice", ActorUser: "alice", ActorClient: "app"})
	f.clock.Advance(time.Minute)
	b := record(t, f, storage.Event{Type: "login.second_factor", UserID: "alice", ActorUser: "alice", ActorClient: "app"})
	f.clock.Advance(time.Minute)
	c := record(t, f, storage.Event{Type: "user.created", UserID: "bob", ActorClient: "cms"})
	f.clock.Advance(time.Minute)
	d := record(t, f, storage.Event{Type: "user_x.created", ActorUser: "bob"}) // '_' is no wildcard
	f.clock.Advance(time.Minute)
	e := record(t, f, storage.Event{Type: "logins.odd"}) // "login." is no prefix of it
	for _, tc := range []struct {
		name   string
		filter storage.EventFilter
		want   []int64
	}{
		{"all", storage.EventFilter{}, []int64{a.ID, b.ID, c.ID, d.ID, e.ID}},
		{"user, as subject or actor", storage.EventFilter{UserID: "bob"}, []int64{c.ID, d.ID}},
		{"user alice", storage.EventFilter{UserID: "alice"}, []int64{a.ID, b.ID}},
		{"client", storage.EventFilter{ClientID: "cms"}, []int64{c.ID}},
		{"exact type", storage.EventFilter{Type: "login.password"}, []int64{a.ID}},
		{"exact type is not a prefix", storage.EventFilter{Type: "login"}, nil},
		{"type prefix", storage.EventFilter{Type: "login."}, []int64{a.ID, b.ID}},
		{"prefix with an underscore", storage.EventFilter{Type: "user_."}, nil},
		{"prefix user.", storage.EventFilter{Type: "user."}, []int64{c.ID}},
		{"since", storage.EventFilter{Since: start.Add(2 * time.Minute)}, []int64{c.ID, d.ID, e.ID}},
		{"until (exclusive)", storage.EventFilter{Until: start.Add(2 * time.Minute)}, []int64{a.ID, b.ID}},
		{"range", storage.EventFilter{Since: start.Add(time.Minute), Until: start.Add(3 * time.Minute)}, []int64{b.ID, c.ID}},
		{"combined", storage.EventFilter{UserID: "alice", Type: "login.", Since: start.Add(time.Second)}, []int64{b.ID}},
		{"nothing", storage.EventFilter{ClientID: "nobody"}, nil},
	} {
		if got := list(t, f, tc.filter); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// testEventCursor pages forwards (oldest first, after the cursor) and
// backwards (Newest: newest first, before it) without skipping or
// repeating, within a filter.
func testEventCursor(t *testing.T, f fixture) {
	var all []int64
	for i := range 7 {
		typ := "login.password"
		if i%3 == 2 {
			typ = "user.updated"
		}
		e := record(t, f, storage.Event{Type: typ})
		if typ == "login.password" {
			all = append(all, e.ID)
		}
	}
	page := func(filter storage.EventFilter) []int64 {
		var out []int64
		for range 10 {
			got := list(t, f, filter)
			out = append(out, got...)
			if len(got) < filter.Limit {
				return out
			}
			filter.Cursor = got[len(got)-1]
		}
		t.Fatal("pages do not end")
		return nil
	}
	if got := page(storage.EventFilter{Type: "login.password", Limit: 2}); !slices.Equal(got, all) {
		t.Fatalf("forwards: %v, want %v", got, all)
	}
	back := slices.Clone(all)
	slices.Reverse(back)
	if got := page(storage.EventFilter{Type: "login.password", Limit: 2, Newest: true}); !slices.Equal(got, back) {
		t.Fatalf("backwards: %v, want %v", got, back)
	}
	if got := list(t, f, storage.EventFilter{Newest: true, Limit: 1}); len(got) != 1 || got[0] != all[len(all)-1] {
		t.Fatalf("the newest: %v, want %d", got, all[len(all)-1])
	}
	if got := list(t, f, storage.EventFilter{Limit: 5000}); len(got) != 7 {
		t.Fatalf("a limit above the cap: %d events", len(got))
	}
}

// testEventDeleteBefore deletes old events in batches of the limit and
// keeps the newer ones.
func testEventDeleteBefore(t *testing.T, f fixture) {
	for range 5 {
		record(t, f, storage.Event{Type: "login.password"})
	}
	f.clock.Advance(48 * time.Hour)
	cut := f.clock.Now().Add(-24 * time.Hour)
	kept := record(t, f, storage.Event{Type: "login.password"})
	n, err := f.db.DeleteEventsBefore(ctx, cut, 3)
	if err != nil || n != 3 {
		t.Fatalf("first batch: %d, %v; want 3", n, err)
	}
	if n, err = f.db.DeleteEventsBefore(ctx, cut, 3); err != nil || n != 2 {
		t.Fatalf("second batch: %d, %v; want 2", n, err)
	}
	if n, err = f.db.DeleteEventsBefore(ctx, cut, 3); err != nil || n != 0 {
		t.Fatalf("nothing left: %d, %v", n, err)
	}
	if got := list(t, f, storage.EventFilter{}); !slices.Equal(got, []int64{kept.ID}) {
		t.Fatalf("left: %v, want the new event %d", got, kept.ID)
	}
}
