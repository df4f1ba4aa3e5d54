package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// eventLines decodes `stile events --json` output: one object a line.
func eventLines(t *testing.T, out string) []storage.Event {
	t.Helper()
	var events []storage.Event
	for line := range strings.Lines(out) {
		var e storage.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		events = append(events, e)
	}
	return events
}

func types(events []storage.Event) string {
	var out []string
	for _, e := range events {
		out = append(out, e.Type+":"+e.Outcome)
	}
	return strings.Join(out, " ")
}

// testTrailCLI: `stile events` filters by user (name or uid), client, type
// (exact and prefix) and time, limits to the newest N printed oldest first,
// and prints a table that names users.
func testTrailCLI(t *testing.T, h *hfixture) {
	ctx := t.Context()
	start := h.s.clock.Now().UTC().Truncate(time.Second)
	for _, e := range []storage.Event{
		{Type: "login.password", UserID: h.alice.ID, ActorUser: h.alice.ID, ActorClient: "app", Outcome: storage.Failure, Reason: "invalid_credentials"},
		{Type: "login.password", UserID: h.alice.ID, ActorUser: h.alice.ID, ActorClient: "app"},
		{Type: "user.created", UserID: h.nora.ID, ActorClient: "cms", At: start.Add(time.Hour)},
		{Type: "logout", UserID: h.alice.ID, ActorUser: h.alice.ID, At: start.Add(2 * time.Hour)},
	} {
		if err := h.s.db.RecordEvent(ctx, &e); err != nil {
			t.Fatal(err)
		}
	}
	list := func(args ...string) []storage.Event {
		t.Helper()
		return eventLines(t, h.s.stile(t, append([]string{"events", "--json"}, args...)...))
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "login.password:failure login.password:success user.created:success logout:success"},
		{[]string{"--user", "alice"}, "login.password:failure login.password:success logout:success"},
		{[]string{"--user", h.nora.ID}, "user.created:success"},
		{[]string{"--client", "cms"}, "user.created:success"},
		{[]string{"--type", "login."}, "login.password:failure login.password:success"},
		{[]string{"--type", "logout"}, "logout:success"},
		{[]string{"--type", "login"}, ""},
		{[]string{"--limit", "2"}, "user.created:success logout:success"},
		{[]string{"--since", start.Add(time.Hour).Format(time.RFC3339)}, "user.created:success logout:success"},
		{[]string{"--until", start.Add(time.Hour).Format(time.RFC3339)}, "login.password:failure login.password:success"},
		{[]string{"--user", "alice", "--type", "login.", "--limit", "1"}, "login.password:success"},
	} {
		if got := types(list(tc.args...)); got != tc.want {
			t.Errorf("stile events %v: %q, want %q", tc.args, got, tc.want)
		}
	}
	out := h.s.stile(t, "events", "--user", "alice")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[1], "invalid_credentials") ||
		!strings.Contains(lines[1], "alice") || !strings.Contains(lines[1], "app") {
		t.Fatalf("the table:\n%s", out)
	}
	var errOut strings.Builder
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--user", "nobody"}, {"--limit", "-1"}} {
		args := append(append([]string{"events"}, bad...), "--database", h.s.dbURL, "--secret-file", h.s.keyFile)
		if err := run(ctx, args, func(string) string { return "" }, strings.NewReader(""), &strings.Builder{}, &errOut); err == nil {
			t.Errorf("stile events %v: no error", bad)
		}
	}
}

// testTrailFollow: `stile events --follow` prints what was there, then an
// event recorded after it started, then stops when its context ends.
func testTrailFollow(t *testing.T, h *hfixture) {
	before := storage.Event{Type: "user.created", UserID: h.nora.ID}
	if err := h.s.db.RecordEvent(t.Context(), &before); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		args := []string{"events", "--follow", "--json", "--type", "user.", "--database", h.s.dbURL, "--secret-file", h.s.keyFile}
		done <- run(ctx, args, func(string) string { return "" }, strings.NewReader(""), out, &syncBuffer{})
	}()
	waitFor := func(what string, ok func([]storage.Event) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second) // a bound on a hang, not a timing assertion
		for !ok(eventLines(t, out.String())) {
			select {
			case err := <-done:
				t.Fatalf("follow ended before %s: %v\n%s", what, err, out.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("follow never printed %s:\n%s", what, out.String())
			}
		}
	}
	waitFor("the event before it started", func(e []storage.Event) bool { return len(e) == 1 && e[0].ID == before.ID })
	other := storage.Event{Type: "login.password", UserID: h.nora.ID} // filtered out
	after := storage.Event{Type: "user.updated", UserID: h.nora.ID}
	for _, e := range []*storage.Event{&other, &after} {
		if err := h.s.db.RecordEvent(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("the event recorded after it started", func(e []storage.Event) bool { return len(e) == 2 && e[1].ID == after.ID })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow ended with %v", err)
	}
	if got := eventLines(t, out.String()); len(got) != 2 {
		t.Fatalf("follow printed %s, want the two user. events once each", types(got))
	}
}

// testTrailRetention: the maintenance pass deletes events older than the
// retention (90 days by default) and keeps the newer ones.
func testTrailRetention(t *testing.T, h *hfixture) {
	ctx := t.Context()
	now := h.s.clock.Now()
	old := storage.Event{Type: "login.password", At: now.Add(-91 * 24 * time.Hour)}
	kept := storage.Event{Type: "login.password", At: now.Add(-89 * 24 * time.Hour)}
	fresh := storage.Event{Type: "login.password"}
	for _, e := range []*storage.Event{&old, &kept, &fresh} {
		if err := h.s.db.RecordEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	h.s.maintain(ctx)
	if got := trail(t, h.s, 0); len(got) != 2 || got[0].ID != kept.ID || got[1].ID != fresh.ID {
		t.Fatalf("after a pass: %v, want the 89-day-old and the new event", got)
	}
	// Two days on, the 89-day-old one is past the retention too.
	h.s.clock.Advance(2 * 24 * time.Hour)
	h.s.maintain(ctx)
	if got := trail(t, h.s, 0); len(got) != 1 || got[0].ID != fresh.ID {
		t.Fatalf("two days later: %v, want only the new event", got)
	}
	// A retention of 0 (--events-retention 0) keeps everything, however old.
	h.s.clock.Advance(365 * 24 * time.Hour)
	expireEvents(ctx, h.s.db, eventsRetention(retentionFlag(0).config()), time.Now().Add(time.Minute), slog.New(slog.NewTextHandler(h.s.logs, nil)))
	if got := trail(t, h.s, 0); len(got) != 1 {
		t.Fatalf("with retention 0: %d events left, want 1", len(got))
	}
	expireEvents(ctx, h.s.db, eventsRetention(0), time.Now().Add(time.Minute), slog.New(slog.NewTextHandler(h.s.logs, nil))) // positive control: appConfig's zero is 90 days
	if got := trail(t, h.s, 0); len(got) != 0 {
		t.Fatalf("with the default retention a year on: %d events left", len(got))
	}
}

// TestRetentionFlag reads --events-retention's forms.
func TestRetentionFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration // for appConfig; 0: an error
	}{
		{"90d", 90 * 24 * time.Hour}, {"2160h", 2160 * time.Hour}, {"1d", 24 * time.Hour}, {"0", -1}, {"0d", -1},
		{"-1h", 0}, {"x", 0}, {"1.5d", 0}, {"-2d", 0},
	} {
		var f retentionFlag
		err := f.Set(tc.in)
		if tc.want == 0 {
			if err == nil {
				t.Errorf("%q: accepted as %s", tc.in, f.String())
			}
			continue
		}
		if err != nil || f.config() != tc.want {
			t.Errorf("%q: %v, %s; want %s", tc.in, err, f.config(), tc.want)
		}
	}
	if f := retentionFlag(DefaultEventsRetention); f.String() != "90d" {
		t.Errorf("the default prints as %q", f.String())
	}
}

// TestFollowLateCommit: on PostgreSQL an event can commit after one with a
// higher id. An id cursor loses it (the negative control); follow's tail,
// which re-reads a trailing window and prints each id once, prints it when
// it commits, and only once. (SQLite commits one writer at a time, in id
// order: nothing to show there.)
func TestFollowLateCommit(t *testing.T) {
	ctx := t.Context()
	dbURL := storagetest.Postgres(t)
	db := storagetest.Open(t, dbURL)
	raw, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var lateID int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO events (at, type) VALUES ($1, 'user.late') RETURNING id`, db.Now()).Scan(&lateID); err != nil {
		t.Fatal(err)
	}
	early := storage.Event{Type: "user.early"}
	if err := db.RecordEvent(ctx, &early); err != nil {
		t.Fatal(err)
	}
	if early.ID <= lateID {
		t.Fatalf("ids %d then %d: the test needs the committed one to be higher", lateID, early.ID)
	}
	tl := newTail(nil)
	fresh, err := tl.poll(ctx, db, storage.EventFilter{})
	if err != nil || types(fresh) != "user.early:success" {
		t.Fatalf("first poll: %s, %v", types(fresh), err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if after, err := db.ListEvents(ctx, storage.EventFilter{Cursor: early.ID}); err != nil || len(after) != 0 {
		t.Fatalf("an id cursor after %d: %v, %v — want nothing (the late event is behind it)", early.ID, after, err)
	}
	fresh, err = tl.poll(ctx, db, storage.EventFilter{})
	if err != nil || len(fresh) != 1 || fresh[0].ID != lateID {
		t.Fatalf("after the late commit: %s, %v; want the late event", types(fresh), err)
	}
	if fresh, err = tl.poll(ctx, db, storage.EventFilter{}); err != nil || len(fresh) != 0 {
		t.Fatalf("a third poll: %s, %v; want nothing new", types(fresh), err)
	}
}
