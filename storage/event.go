package storage

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Event outcomes.
const (
	Success = "success"
	Failure = "failure"
)

// Event is one line of the audit trail: who did what, to whom, when, from
// where, and how it ended. It never holds a secret: Detail names what
// changed (fields, roles, a method), not passwords, codes or tokens.
type Event struct {
	ID          int64      `db:"id" json:"id"`
	At          time.Time  `db:"at" json:"at"`
	Type        string     `db:"type" json:"type"`
	Outcome     string     `db:"outcome" json:"outcome"`
	Reason      string     `db:"reason" json:"reason,omitempty"`
	ActorUser   string     `db:"actor_user" json:"actor_user,omitempty"`
	ActorClient string     `db:"actor_client" json:"actor_client,omitempty"`
	Actor       string     `db:"actor" json:"actor,omitempty"`
	UserID      string     `db:"user_id" json:"user_id,omitempty"`
	Remote      string     `db:"remote" json:"remote,omitempty"`
	Detail      Attributes `db:"detail" json:"detail,omitempty"`
}

const eventColumns = `id, at, type, outcome, reason, actor_user, actor_client, actor, user_id, remote, detail`

// RecordEvent appends e to the trail, filling in its time (when unset),
// outcome (success when unset) and ID.
func (d *DB) RecordEvent(ctx context.Context, e *Event) error {
	if e.Type == "" {
		return fmt.Errorf("%w: event without a type", ErrInvalid)
	}
	if e.At.IsZero() {
		e.At = d.Now()
	}
	if e.Outcome == "" {
		e.Outcome = Success
	}
	if e.Detail == nil {
		e.Detail = Attributes{}
	}
	const q = `INSERT INTO events (at, type, outcome, reason, actor_user, actor_client, actor, user_id, remote, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	if err := d.get(ctx, d.w, &e.ID, q, e.At, e.Type, e.Outcome, e.Reason, e.ActorUser, e.ActorClient, e.Actor,
		e.UserID, e.Remote, e.Detail); err != nil {
		return fmt.Errorf("record event %s: %w", e.Type, err)
	}
	return nil
}

// EventFilter selects events. Zero fields select everything. Events come
// in ID order, oldest first, after the cursor; with Newest, newest first,
// before it.
type EventFilter struct {
	UserID   string    // the user the event is about, or who acted
	ClientID string    // the client that acted
	Type     string    // exact, or a prefix ending in '.' ("login.")
	Since    time.Time // at or after
	Until    time.Time // before
	Cursor   int64     // the last ID of the previous page; 0 for the first
	Newest   bool
	Limit    int // 0 means 100; at most MaxEventPage
}

// MaxEventPage is the most events one ListEvents call returns.
const MaxEventPage = 1000

// ListEvents returns up to f.Limit events matching f.
func (d *DB) ListEvents(ctx context.Context, f EventFilter) ([]Event, error) {
	var where []string
	var args []any
	add := func(cond string, arg any) { where = append(where, cond); args = append(args, arg) }
	if f.UserID != "" {
		where = append(where, "(user_id = ? OR actor_user = ?)")
		args = append(args, f.UserID, f.UserID)
	}
	if f.ClientID != "" {
		add("actor_client = ?", f.ClientID)
	}
	switch {
	case strings.HasSuffix(f.Type, "."):
		add(`type LIKE ? ESCAPE '\'`, escapeLike(f.Type)+"%")
	case f.Type != "":
		add("type = ?", f.Type)
	}
	if !f.Since.IsZero() {
		add("at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		add("at < ?", f.Until.UTC())
	}
	// Both dialects hand out ids in insertion order, so the id is the
	// cursor. (On PostgreSQL a row can commit after one with a higher id:
	// a reader tailing the trail re-reads a trailing window; see
	// cmd/stile/events.go.)
	order := "ASC"
	if f.Newest {
		order = "DESC"
		if f.Cursor > 0 {
			add("id < ?", f.Cursor)
		}
	} else if f.Cursor > 0 {
		add("id > ?", f.Cursor)
	}
	q := `SELECT ` + eventColumns + ` FROM events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxEventPage)
	q += fmt.Sprintf(` ORDER BY id %s LIMIT %d`, order, limit)
	var out []Event
	if err := d.sel(ctx, d.r, &out, q, args...); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// DeleteEventsBefore deletes up to limit events older than t and says how
// many went: retention, in batches so each lock stays short.
func (d *DB) DeleteEventsBefore(ctx context.Context, t time.Time, limit int) (int64, error) {
	q := `DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? ORDER BY id LIMIT ?)`
	n, err := d.exec(ctx, d.w, q, t.UTC(), limit)
	if err != nil {
		return 0, fmt.Errorf("delete old events: %w", err)
	}
	return n, nil
}

// escapeLike escapes LIKE's wildcards in s for `LIKE ? ESCAPE '\'`, which
// both dialects read alike.
func escapeLike(s string) string {
	return strings.NewReplacer(`%`, `\%`, `_`, `\_`).Replace(s)
}
