package admin

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stile-id/stile/storage"
)

// Event is one entry of the audit trail (storage.Event holds no secret).
type Event = storage.Event

type eventPage struct {
	Events     []Event `json:"events"`
	NextCursor string  `json:"next_cursor,omitempty"` // absent on the last page
}

// listEvents answers the audit trail, oldest first, a page at a time:
// walking the cursors to the end, then waiting and asking again from the
// last one, follows the trail as it grows.
func (h *Handler) listEvents(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	q, err := queryParams(r, "user", "client", "type", "since", "until", "limit", "cursor")
	if err != nil {
		return err
	}
	f := storage.EventFilter{UserID: q["user"], ClientID: q["client"], Type: q["type"]}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s, ok := q[t.name]; ok {
			if *t.dst, err = time.Parse(time.RFC3339, s); err != nil {
				return badField(t.name, "use an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
			}
		}
	}
	if c, ok := q["cursor"]; ok {
		if f.Cursor, err = parseEventCursor(c); err != nil {
			return err
		}
	}
	limit, err := limitParam(q, 100, 500)
	if err != nil {
		return err
	}
	f.Limit = limit + 1 // one more says whether a next page exists
	evs, err := h.db.ListEvents(r.Context(), f)
	if err != nil {
		return err
	}
	out := eventPage{Events: evs}
	if len(evs) > limit {
		out.Events = evs[:limit]
		out.NextCursor = eventCursor(evs[limit-1].ID)
	}
	if out.Events == nil {
		out.Events = []Event{}
	}
	for i := range out.Events {
		out.Events[i].At = out.Events[i].At.UTC()
	}
	return writeJSON(w, http.StatusOK, out)
}

// An event cursor is opaque to callers: the last ID they saw, encoded so
// that nobody builds one by hand.
const eventCursorPrefix = "ev1."

func eventCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(eventCursorPrefix + strconv.FormatInt(id, 10)))
}

func parseEventCursor(s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	rest, ok := strings.CutPrefix(string(b), eventCursorPrefix)
	if err != nil || !ok {
		return 0, badField("cursor", "not a cursor this API returned")
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 {
		return 0, badField("cursor", "not a cursor this API returned")
	}
	return id, nil
}
