package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// testAdminHostile: huge bodies, wrong content types, unknown fields and
// query parameters, attributes over the cap, bad cursors and limits are
// refused with the right problem, each beside a request that works.
func testAdminHostile(t *testing.T, f *adminFixture) {
	u := f.create(t, map[string]any{"username": "kim"})
	big := []byte(`{"username":"x","attributes":{"a":"` + strings.Repeat("a", 70<<10) + `"}}`)
	f.raw(t, http.MethodPost, "/api/v1/users", f.token, "application/json", big).problem(t, http.StatusRequestEntityTooLarge)
	huge := bytes.Repeat([]byte(" "), 2<<20)
	f.raw(t, http.MethodPost, "/api/v1/users", f.token, "application/json", huge).problem(t, http.StatusRequestEntityTooLarge)

	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/merge-patch+json"} {
		f.raw(t, http.MethodPost, "/api/v1/users", f.token, ct, []byte(`{"username":"lee"}`)).problem(t, http.StatusUnsupportedMediaType)
	}
	f.raw(t, http.MethodPost, "/api/v1/users", f.token, "application/json; charset=utf-8", []byte(`{"username":"lee"}`)).want(t, http.StatusCreated)

	for body, fields := range map[string][]string{
		`{"username":"mo","is_admin":true,"password_hash":"$2y$"}`: {"is_admin", "password_hash"},
		`{"username":"mo","roles":"admin"}`:                        {"roles"},
		`{"username":7}`:                                           {"username"},
		`[{"username":"mo"}]`:                                      {"body"},
		`{"username":"mo"} {"username":"mo2"}`:                     {"body"},
		`{"username":"mo"`:                                         {"body"},
	} {
		p := f.raw(t, http.MethodPost, "/api/v1/users", f.token, "application/json", []byte(body)).problem(t, http.StatusBadRequest)
		if !slices.Equal(problemFields(p), fields) {
			t.Errorf("%s: problem names %v, want %v", body, problemFields(p), fields)
		}
	}
	p := f.call(t, http.MethodPatch, userPath(u), map[string]any{"uid": "x", "disabled": true}).problem(t, http.StatusBadRequest)
	if !slices.Equal(problemFields(p), []string{"disabled", "uid"}) {
		t.Errorf("PATCH of read-only fields names %v", problemFields(p))
	}

	// Attributes over the 4 KiB cap, whole or grown by a patch.
	over := map[string]any{"blob": strings.Repeat("x", storage.MaxAttributesSize)}
	for _, r := range []adminAnswer{
		f.call(t, http.MethodPost, "/api/v1/users", map[string]any{"username": "nat", "attributes": over}),
		f.call(t, http.MethodPatch, userPath(u), map[string]any{"attributes": over}),
		f.call(t, http.MethodPut, userPath(u), map[string]any{"username": "kim", "attributes": over}),
	} {
		if p := r.problem(t, http.StatusBadRequest); !slices.Contains(problemFields(p), "attributes") {
			t.Errorf("oversized attributes: problem names %v", problemFields(p))
		}
	}
	half := map[string]any{"blob": strings.Repeat("x", storage.MaxAttributesSize/2)}
	f.call(t, http.MethodPatch, userPath(u), map[string]any{"attributes": half}).want(t, http.StatusOK)
	r := f.call(t, http.MethodPatch, userPath(u), map[string]any{"attributes": map[string]any{"blob2": half["blob"]}})
	if p := r.problem(t, http.StatusBadRequest); !slices.Contains(problemFields(p), "attributes") {
		t.Errorf("a patch growing attributes past the cap: %v", problemFields(p))
	}

	for query, field := range map[string]string{
		"cursor=not+a+cursor%21": "cursor", "limit=0": "limit", "limit=201": "limit", "limit=x": "limit",
		"disabled=maybe": "disabled", "role=%zz": "query", "attribute=novalue": "attribute", "colour=red": "colour", "role=a&role=b": "role",
	} {
		p := f.call(t, http.MethodGet, "/api/v1/users?"+query, nil).problem(t, http.StatusBadRequest)
		if !slices.Contains(problemFields(p), field) {
			t.Errorf("users?%s: problem names %v, want %s", query, problemFields(p), field)
		}
	}
	f.call(t, http.MethodGet, "/api/v1/users?limit=200&attribute=plan%3Dpro", nil).want(t, http.StatusOK)
	for _, query := range []string{"cursor=ZXYxLmFiYw" /* ev1.abc */, "cursor=abc", "since=yesterday", "limit=501", "who=me"} {
		f.call(t, http.MethodGet, "/api/v1/events?"+query, nil).problem(t, http.StatusBadRequest)
	}
}

// testAdminEvents: each management action is in the audit trail with the
// client that did it; filters by user, client, type and time select;
// pages follow cursors to the end without repeating an event.
func testAdminEvents(t *testing.T, f *adminFixture) {
	start := f.s.clock.Now().Add(-time.Second)
	u := f.create(t, map[string]any{"username": "olga"})
	f.call(t, http.MethodPatch, userPath(u), map[string]any{"roles": []string{"x"}}).want(t, http.StatusOK)
	f.call(t, http.MethodPost, userPath(u, "/disable"), nil).want(t, http.StatusOK)
	for i := range 5 {
		f.create(t, map[string]any{"username": fmt.Sprintf("olga-%d", i)})
	}
	var page struct {
		Events []storage.Event `json:"events"`
		Next   string          `json:"next_cursor"`
	}
	f.call(t, http.MethodGet, "/api/v1/events?user="+u["uid"].(string), nil).want(t, http.StatusOK).decode(t, &page)
	var types []string
	for _, e := range page.Events {
		types = append(types, e.Type)
		if e.ActorClient != "cms" || e.UserID != u["uid"] || e.Outcome != storage.Success {
			t.Errorf("event %+v", e)
		}
	}
	if !slices.Equal(types, []string{"user.created", "user.updated", "user.disabled"}) || page.Next != "" {
		t.Fatalf("olga's events: %v (next %q)", types, page.Next)
	}

	seen := map[int64]bool{}
	cursor, n := "", 0
	for range 10 {
		var page struct {
			Events []storage.Event `json:"events"`
			Next   string          `json:"next_cursor"`
		}
		q := url.Values{"client": {"cms"}, "type": {"user.created"}, "limit": {"2"}, "since": {start.Format(time.RFC3339)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		f.call(t, http.MethodGet, "/api/v1/events?"+q.Encode(), nil).want(t, http.StatusOK).decode(t, &page)
		for _, e := range page.Events {
			if seen[e.ID] || e.Type != "user.created" {
				t.Errorf("event %d (%s) twice or of the wrong type", e.ID, e.Type)
			}
			seen[e.ID] = true
			n++
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if n != 6 {
		t.Errorf("%d user.created events by cms, want 6", n)
	}
	page.Events = nil
	until := url.QueryEscape(start.Format(time.RFC3339))
	f.call(t, http.MethodGet, "/api/v1/events?until="+until, nil).want(t, http.StatusOK).decode(t, &page)
	if len(page.Events) != 0 {
		t.Errorf("events before the test began: %v", page.Events)
	}
	page.Events = nil
	f.call(t, http.MethodGet, "/api/v1/events?client=nobody", nil).want(t, http.StatusOK).decode(t, &page)
	if len(page.Events) != 0 {
		t.Errorf("events by an unknown client: %v", page.Events)
	}
}

// TestAdminRateLimit: a client over its rate gets 429 with Retry-After,
// counted in the database; another client is not held back, and the
// first one passes again in the next window.
func TestAdminRateLimit(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newAdminFixture(t, d.URL(t), func(c *appConfig) { c.AdminRate = storage.Rate{Limit: 3, Per: time.Minute} })
			for range 3 {
				f.call(t, http.MethodGet, "/api/v1/clients", nil).want(t, http.StatusOK)
			}
			r := f.call(t, http.MethodGet, "/api/v1/clients", nil)
			r.problem(t, http.StatusTooManyRequests)
			if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
				t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
			}
			var made map[string]any
			jsonInto(t, f.s.stile(t, "client", "add", "--id", "cms2", "--type", "web", "--grant-type", "client_credentials",
				"--scope", "stile:admin", "--json"), &made)
			other := f.clientToken(t, "cms2", made["client_secret"].(string), "stile:admin")
			f.raw(t, http.MethodGet, "/api/v1/clients", other, "", nil).want(t, http.StatusOK)
			f.s.clock.Advance(time.Minute)
			f.call(t, http.MethodGet, "/api/v1/clients", nil).want(t, http.StatusOK)
		})
	}
}
