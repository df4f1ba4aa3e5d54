package main

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stile-id/stile/storage"
)

// create makes a user through the API and returns it as the API did.
func (f *adminFixture) create(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	r := f.call(t, http.MethodPost, "/api/v1/users", body).want(t, http.StatusCreated)
	u := r.object(t)
	if r.header.Get("Location") != "/api/v1/users/"+u["uid"].(string) || r.header.Get("ETag") != fmt.Sprintf(`"%v"`, u["version"]) {
		t.Fatalf("Location %q ETag %q for %v", r.header.Get("Location"), r.header.Get("ETag"), u)
	}
	return u
}

func userPath(u map[string]any, rest ...string) string {
	return "/api/v1/users/" + u["uid"].(string) + strings.Join(rest, "")
}

// testAdminUsers: create (with a password, without one: an enrolment
// link), read by id, username and email, conflicts and invalid fields,
// set the password, disable, enable, delete.
func testAdminUsers(t *testing.T, f *adminFixture) {
	bob := f.create(t, map[string]any{"username": "bob", "email": "Bob@Example.com", "phone": "+44 20 7946 0000",
		"password": "a long enough password", "roles": []string{"editor"}, "attributes": map[string]any{"plan": "pro"}})
	if bob["username"] != "bob" || !reflect.DeepEqual(bob["roles"], []any{"editor"}) || bob["enrollment"] != nil ||
		bob["password"] != nil || bob["password_hash"] != nil {
		t.Fatalf("created bob: %v", bob)
	}
	carol := f.create(t, map[string]any{"username": "carol", "email": "carol@example.com"})
	enr, _ := carol["enrollment"].(map[string]any)
	if link, _ := enr["url"].(string); !strings.HasPrefix(link, f.s.URL+"/") || enr["expires_at"] == nil {
		t.Fatalf("a user without a password got no enrolment link: %v", carol)
	}

	for _, path := range []string{userPath(bob), "/api/v1/users/by-username/BOB", "/api/v1/users/by-email/bob@example.com"} {
		r := f.call(t, http.MethodGet, path, nil).want(t, http.StatusOK)
		if got := r.object(t); got["uid"] != bob["uid"] || r.header.Get("ETag") == "" {
			t.Errorf("GET %s: %v", path, got)
		}
	}
	// The lookups' paths hold personal data: the request log leaves it out.
	if logs := strings.ToLower(f.s.logs.String()); strings.Contains(logs, "bob@example.com") ||
		!strings.Contains(logs, "/api/v1/users/by-email/…") {
		t.Errorf("the request log and lookups by email:\n%s", logs)
	}
	for _, path := range []string{"/api/v1/users/00000000-0000-0000-0000-000000000000", "/api/v1/users/by-username/nobody",
		"/api/v1/users/by-email/nobody@example.com"} {
		f.call(t, http.MethodGet, path, nil).problem(t, http.StatusNotFound)
	}

	// Conflicts name their field; so do invalid values.
	for _, tc := range []struct {
		body   map[string]any
		status int
		field  string
	}{
		{map[string]any{"username": "Bob"}, http.StatusConflict, "username"},
		{map[string]any{"username": "bob2", "email": "BOB@example.com"}, http.StatusConflict, "email"},
		{map[string]any{"username": ""}, http.StatusBadRequest, "username"},
		{map[string]any{"username": "dave", "email": "not an address"}, http.StatusBadRequest, "email"},
		{map[string]any{"username": "dave", "phone": "12"}, http.StatusBadRequest, "phone"},
		{map[string]any{"username": "dave", "password": "short"}, http.StatusBadRequest, "password"},
		{map[string]any{"username": "dave", "roles": []string{" "}}, http.StatusBadRequest, "roles"},
	} {
		p := f.call(t, http.MethodPost, "/api/v1/users", tc.body).problem(t, tc.status)
		if !slices.Contains(problemFields(p), tc.field) {
			t.Errorf("%v: problem names %v, want %s", tc.body, problemFields(p), tc.field)
		}
	}
	f.create(t, map[string]any{"username": "dave"}) // the positive control of the refusals above

	f.call(t, http.MethodPut, userPath(bob, "/password"), map[string]any{"password": "another long password"}).want(t, http.StatusNoContent)
	p := f.call(t, http.MethodPut, userPath(bob, "/password"), map[string]any{"password": "short"}).problem(t, http.StatusBadRequest)
	if !slices.Contains(problemFields(p), "password") {
		t.Errorf("short password: %v", p)
	}
	f.call(t, http.MethodPut, userPath(bob, "/password"), map[string]any{}).problem(t, http.StatusBadRequest)

	if u := f.call(t, http.MethodPost, userPath(bob, "/disable"), nil).want(t, http.StatusOK).object(t); u["disabled"] != true {
		t.Errorf("disable: %v", u)
	}
	if u := f.call(t, http.MethodPost, userPath(bob, "/enable"), nil).want(t, http.StatusOK).object(t); u["disabled"] != false {
		t.Errorf("enable: %v", u)
	}
	f.call(t, http.MethodDelete, userPath(bob), nil).want(t, http.StatusNoContent)
	f.call(t, http.MethodGet, userPath(bob), nil).problem(t, http.StatusNotFound)
	f.call(t, http.MethodDelete, userPath(bob), nil).problem(t, http.StatusNotFound)
	f.call(t, http.MethodPost, userPath(bob, "/disable"), nil).problem(t, http.StatusNotFound)
	f.call(t, http.MethodGet, "/api/v1/users/by-username/carol", nil).want(t, http.StatusOK) // others stay

	// Every operation on a user that does not exist is a 404 problem.
	for _, op := range []struct {
		method, rest string
		body         any
	}{
		{http.MethodGet, "", nil}, {http.MethodPut, "", map[string]any{"username": "x"}}, {http.MethodDelete, "", nil},
		{http.MethodPut, "/password", map[string]any{"password": "long enough, surely"}},
		{http.MethodPost, "/disable", nil}, {http.MethodPost, "/enable", nil},
		{http.MethodGet, "/sessions", nil}, {http.MethodDelete, "/sessions", nil},
		{http.MethodGet, "/factors", nil}, {http.MethodDelete, "/factors/totp", nil},
		{http.MethodPost, "/enrollment-link", nil},
	} {
		f.call(t, op.method, userPath(bob, op.rest), op.body).problem(t, http.StatusNotFound)
	}
}

// testAdminPatchPut: PATCH merges attributes (null deletes a key) and
// replaces the fields it names; PUT replaces the whole profile.
func testAdminPatchPut(t *testing.T, f *adminFixture) {
	u := f.create(t, map[string]any{"username": "erin", "email": "erin@example.com", "phone": "+15551234567",
		"roles": []string{"a", "b"}, "attributes": map[string]any{"plan": "pro", "seats": 3, "org": map[string]any{"id": 1, "name": "x"}}})
	got := f.call(t, http.MethodPatch, userPath(u), map[string]any{"roles": []string{"c"}, "phone": nil,
		"attributes": map[string]any{"seats": nil, "tier": "gold", "org": map[string]any{"name": "y"}}}).want(t, http.StatusOK).object(t)
	want := map[string]any{"plan": "pro", "tier": "gold", "org": map[string]any{"id": float64(1), "name": "y"}}
	if !reflect.DeepEqual(got["attributes"], want) || !reflect.DeepEqual(got["roles"], []any{"c"}) || got["phone"] != "" ||
		got["email"] != "erin@example.com" || got["version"].(float64) <= u["version"].(float64) {
		t.Fatalf("after the merge patch: %v", got)
	}
	got = f.call(t, http.MethodPut, userPath(u), map[string]any{"username": "erin", "attributes": map[string]any{"k": "v"}}).
		want(t, http.StatusOK).object(t)
	if !reflect.DeepEqual(got["attributes"], map[string]any{"k": "v"}) || len(got["roles"].([]any)) != 0 || got["email"] != "" {
		t.Fatalf("after the replacement: %v", got)
	}
	// A merge patch must say so; a PUT is plain JSON.
	r := f.raw(t, http.MethodPatch, userPath(u), f.token, "application/json", []byte(`{"roles":[]}`))
	if r.problem(t, http.StatusUnsupportedMediaType); r.header.Get("Accept-Patch") != "application/merge-patch+json" {
		t.Errorf("415 to a PATCH: Accept-Patch %q", r.header.Get("Accept-Patch"))
	}
	f.raw(t, http.MethodPut, userPath(u), f.token, "application/merge-patch+json", []byte(`{"username":"erin"}`)).
		problem(t, http.StatusUnsupportedMediaType)
	// Taken usernames and emails conflict on update too.
	f.create(t, map[string]any{"username": "frank", "email": "frank@example.com"})
	p := f.call(t, http.MethodPatch, userPath(u), map[string]any{"email": "FRANK@example.com"}).problem(t, http.StatusConflict)
	if !slices.Contains(problemFields(p), "email") {
		t.Errorf("conflict names %v", problemFields(p))
	}
	f.call(t, http.MethodPatch, "/api/v1/users/00000000-0000-0000-0000-000000000000", map[string]any{"roles": []string{}}).
		problem(t, http.StatusNotFound)
}

// testAdminETags: If-Match makes an update conditional. Of two PATCHes
// based on the same ETag one wins and one gets 412, sequentially and
// concurrently; the winner's ETag works next.
func testAdminETags(t *testing.T, f *adminFixture) {
	u := f.create(t, map[string]any{"username": "gina"})
	tag := f.call(t, http.MethodGet, userPath(u), nil).want(t, http.StatusOK).header.Get("ETag")
	first := f.call(t, http.MethodPatch, userPath(u), map[string]any{"roles": []string{"one"}}, "If-Match", tag).want(t, http.StatusOK)
	f.call(t, http.MethodPatch, userPath(u), map[string]any{"roles": []string{"two"}}, "If-Match", tag).problem(t, http.StatusPreconditionFailed)
	f.call(t, http.MethodPut, userPath(u), map[string]any{"username": "gina"}, "If-Match", tag).problem(t, http.StatusPreconditionFailed)
	f.call(t, http.MethodPatch, userPath(u), map[string]any{"roles": []string{"x"}}, "If-Match", "garbage").problem(t, http.StatusPreconditionFailed)
	next := first.header.Get("ETag")
	if next == tag || next == "" {
		t.Fatalf("ETag %q after a change from %q", next, tag)
	}
	var wg sync.WaitGroup
	statuses := make([]int, 4)
	for i := range statuses {
		wg.Go(func() {
			statuses[i] = f.call(t, http.MethodPatch, userPath(u), map[string]any{"attributes": map[string]any{"n": i}}, "If-Match", next).status
		})
	}
	wg.Wait()
	slices.Sort(statuses)
	if !slices.Equal(statuses, []int{200, 412, 412, 412}) {
		t.Fatalf("four concurrent PATCHes on one ETag: %v, want one 200", statuses)
	}
	got := f.call(t, http.MethodGet, userPath(u), nil).object(t)
	if !reflect.DeepEqual(got["roles"], []any{"one"}) {
		t.Errorf("the refused PATCH changed the roles: %v", got)
	}
}

// testAdminPagination: a walk over every page, while other goroutines
// create users, sees each user present at the start exactly once and no
// user twice.
func testAdminPagination(t *testing.T, f *adminFixture) {
	before := map[string]bool{}
	for i := range 40 {
		u := &storage.User{Username: fmt.Sprintf("page-%02d", i), Roles: storage.Strings{"paged"}}
		if err := f.s.db.CreateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		before[u.ID] = true
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Names before, between and after the walked ones.
				name := fmt.Sprintf("page-%02d-%d-%d", i%45, w, i)
				r := f.call(t, http.MethodPost, "/api/v1/users", map[string]any{"username": name, "roles": []string{"paged"}})
				if r.status != http.StatusCreated {
					t.Errorf("create %s meanwhile: %d %s", name, r.status, r.body)
					return
				}
			}
		})
	}
	seen := map[string]int{}
	cursor, pages := "", 0
	for range 100 {
		q := url.Values{"role": {"paged"}, "limit": {"7"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Users []struct {
				UID string `json:"uid"`
			} `json:"users"`
			Next string `json:"next_cursor"`
		}
		f.call(t, http.MethodGet, "/api/v1/users?"+q.Encode(), nil).want(t, http.StatusOK).decode(t, &page)
		for _, u := range page.Users {
			seen[u.UID]++
		}
		pages++
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	close(stop)
	wg.Wait()
	for id := range before {
		if seen[id] != 1 {
			t.Errorf("user %s present from the start seen %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("user %s seen %d times", id, n)
		}
	}
	if pages < 6 {
		t.Errorf("%d pages of 7 for at least 40 users", pages)
	}
	// The filters: a prefix, a role, disabled.
	var page struct {
		Users []map[string]any `json:"users"`
	}
	f.call(t, http.MethodGet, "/api/v1/users?username_prefix=PAGE-0&limit=200&disabled=false", nil).want(t, http.StatusOK).decode(t, &page)
	for _, u := range page.Users {
		if !strings.HasPrefix(u["username"].(string), "page-0") {
			t.Errorf("prefix page-0 found %v", u["username"])
		}
	}
	if len(page.Users) < 10 {
		t.Errorf("prefix page-0: %d users", len(page.Users))
	}
}
