package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/storage"
)

// eventsOptions are the flags of `stile events`.
type eventsOptions struct {
	user, client, typ string
	since, until      string
	limit             int
	follow            bool
}

func (c *cli) eventsCommand() *cobra.Command {
	var o eventsOptions
	cmd := &cobra.Command{
		Use:   "events [flags]",
		Short: "Show the audit trail: sign-ins, logouts, factor and account changes",
		Long: "Show the audit trail, newest --limit events oldest first; with --follow keep printing\n" +
			"new events as they are recorded, until interrupted.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.events(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.user, "user", "", "only events about or by this user (username or uid)")
	f.StringVar(&o.client, "client", "", "only events of this client ID")
	f.StringVar(&o.typ, "type", "", "only this event type, or a prefix ending in '.' (login.)")
	f.StringVar(&o.since, "since", "", "only events at or after this time: RFC 3339, or a duration ago (90m, 2h, 7d)")
	f.StringVar(&o.until, "until", "", "only events before this time: RFC 3339, or a duration ago")
	f.IntVar(&o.limit, "limit", 100, "show the newest N events (0: all)")
	f.BoolVarP(&o.follow, "follow", "f", false, "keep printing new events, polling every second, until interrupted")
	c.addJSON(cmd)
	return cmd
}

// filter turns the flags into the store's filter; now anchors durations,
// and find resolves --user.
func (o eventsOptions) filter(ctx context.Context, find func(context.Context, string) (*storage.User, error), now time.Time) (storage.EventFilter, error) {
	f := storage.EventFilter{ClientID: o.client, Type: o.typ}
	var err error
	if f.Since, err = parseWhen(o.since, now); err != nil {
		return f, fmt.Errorf("--since: %w", err)
	}
	if f.Until, err = parseWhen(o.until, now); err != nil {
		return f, fmt.Errorf("--until: %w", err)
	}
	if o.limit < 0 {
		return f, fmt.Errorf("--limit must be 0 or more, not %d", o.limit)
	}
	if o.user != "" {
		u, err := find(ctx, o.user)
		switch {
		case err == nil:
			f.UserID = u.ID
		case errors.Is(err, account.ErrNotFound) && uuid.Validate(o.user) == nil: // a deleted user's events outlive them
			f.UserID = o.user
		default:
			return f, fmt.Errorf("--user: %w", err)
		}
	}
	return f, nil
}

// parseWhen reads a time: RFC 3339, or a duration before now ("2h", "7d").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := parseDays(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration ago like 1h or 7d", s)
	}
	return now.Add(-d), nil
}

// parseDays is time.ParseDuration that also takes whole days ("90d").
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 100*365 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func (c *cli) events(ctx context.Context, o eventsOptions) error {
	env, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer env.Close()
	f, err := o.filter(ctx, env.accounts("").Find, time.Now())
	if err != nil {
		return err
	}
	p := &eventPrinter{w: c.stdout, json: c.jsonOut, db: env.db, names: map[string]string{}}
	events, err := newestEvents(ctx, env.db, f, o.limit)
	if err != nil {
		return err
	}
	if err := p.print(ctx, events); err != nil {
		return err
	}
	if !o.follow {
		return nil
	}
	return follow(ctx, env.db, f, events, p.print)
}

// newestEvents returns the newest limit events matching f (0: all), oldest
// first.
func newestEvents(ctx context.Context, db *storage.DB, f storage.EventFilter, limit int) ([]storage.Event, error) {
	f.Newest = true
	var out []storage.Event
	for limit == 0 || len(out) < limit {
		f.Limit = storage.MaxEventPage
		if limit > 0 {
			f.Limit = min(limit-len(out), storage.MaxEventPage)
		}
		page, err := db.ListEvents(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < f.Limit {
			break
		}
		f.Cursor = page[len(page)-1].ID
	}
	slices.Reverse(out)
	return out, nil
}

// followLag is how long after its time an event may still become visible.
//
// Ids are no safe cursor for tailing on PostgreSQL: a BIGSERIAL id is
// taken when the INSERT runs, and a transaction that took id 41 can commit
// after the one that took 42, so a reader that saw 42 and then asks for
// "id > 42" never sees 41. follow therefore re-reads, on every poll, every
// event from followLag before the newest time it has seen, and prints only
// ids it has not printed yet: an event that commits up to followLag late
// (measured against the newest event's time, so the writers' clocks, not
// this one's, set the window) is printed, once. An event is recorded in one
// short statement, so a second's delay is already rare; ten leave room for
// clock skew between instances. The cost is re-reading ten seconds of the
// trail each second, which is small beside what wrote it.
const followLag = 10 * time.Second

// pollEvery is how often follow asks for new events, in wall time.
const pollEvery = time.Second

// follow prints events matching f that appear after shown, polling every
// second until ctx ends.
func follow(ctx context.Context, db *storage.DB, f storage.EventFilter, shown []storage.Event, print func(context.Context, []storage.Event) error) error {
	t := newTail(shown)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		fresh, err := t.poll(ctx, db, f)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := print(ctx, fresh); err != nil {
			return err
		}
	}
}

// tail remembers what follow printed within the trailing window.
type tail struct {
	seen   map[int64]time.Time // printed ids, with their times
	newest time.Time           // the newest event time seen
	oldest int64               // the oldest id printed at the start: older ids were left out on purpose (--limit)
}

func newTail(shown []storage.Event) *tail {
	t := &tail{seen: map[int64]time.Time{}}
	for _, e := range shown {
		t.add(e)
	}
	if len(shown) > 0 {
		t.oldest = shown[0].ID
	}
	return t
}

func (t *tail) add(e storage.Event) {
	t.seen[e.ID] = e.At
	if e.At.After(t.newest) {
		t.newest = e.At
	}
}

// poll reads the window from followLag before the newest event seen (all
// of f, if none was) and returns the events not printed yet, in id order.
func (t *tail) poll(ctx context.Context, db *storage.DB, f storage.EventFilter) ([]storage.Event, error) {
	if !t.newest.IsZero() {
		if from := t.newest.Add(-followLag); from.After(f.Since) {
			f.Since = from
		}
	}
	f.Limit = storage.MaxEventPage
	var fresh []storage.Event
	for {
		page, err := db.ListEvents(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if _, ok := t.seen[e.ID]; !ok && e.ID > t.oldest {
				fresh = append(fresh, e)
			}
		}
		if len(page) < f.Limit {
			break
		}
		f.Cursor = page[len(page)-1].ID
	}
	for _, e := range fresh {
		t.add(e)
	}
	for id, at := range t.seen { // forget what the window has passed
		if at.Before(t.newest.Add(-followLag)) {
			delete(t.seen, id)
		}
	}
	return fresh, nil
}

// eventPrinter prints events as JSON lines or as a readable table, which
// names users by username where they still exist.
type eventPrinter struct {
	w      io.Writer
	json   bool
	db     *storage.DB
	names  map[string]string // uid → username ("" for a deleted user)
	header bool
}

func (p *eventPrinter) print(ctx context.Context, events []storage.Event) error {
	if p.json {
		enc := json.NewEncoder(p.w)
		for _, e := range events {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	if !p.header {
		p.header = true
		if _, err := fmt.Fprintf(p.w, eventRow, "TIME", "TYPE", "OUTCOME", "REASON", "USER", "CLIENT", "REMOTE", "DETAIL"); err != nil {
			return err
		}
	}
	for _, e := range events {
		detail := ""
		if len(e.Detail) > 0 {
			b, _ := json.Marshal(e.Detail)
			detail = string(b)
		}
		client := e.ActorClient
		if e.Actor != "" {
			client = strings.TrimSpace(client + " " + e.Actor)
		}
		if _, err := fmt.Fprintf(p.w, eventRow, e.At.UTC().Format(time.RFC3339), e.Type, e.Outcome, dash(e.Reason),
			dash(p.name(ctx, e)), dash(client), dash(e.Remote), detail); err != nil {
			return err
		}
	}
	return nil
}

const eventRow = "%-20s  %-24s  %-7s  %-20s  %-16s  %-12s  %-15s  %s\n"

// name is how the table shows the event's user: the username if the
// account still exists, else its uid.
func (p *eventPrinter) name(ctx context.Context, e storage.Event) string {
	id := e.UserID
	if id == "" {
		id = e.ActorUser
	}
	if id == "" {
		return ""
	}
	name, ok := p.names[id]
	if !ok {
		if u, err := p.db.GetUser(ctx, id); err == nil {
			name = u.Username
		} else if !errors.Is(err, storage.ErrNotFound) {
			return id
		}
		p.names[id] = name
	}
	if name == "" {
		return id
	}
	return name
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
