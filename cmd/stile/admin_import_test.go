package main

import (
	"bytes"
	"net/http"
	"reflect"
	"testing"

	"github.com/stile-id/stile/login"
)

type importReport struct {
	Imported int `json:"imported"`
	Skipped  []struct {
		Line     int    `json:"line"`
		Username string `json:"username"`
	} `json:"skipped"`
	Failed []struct {
		Line   int    `json:"line"`
		Reason string `json:"reason"`
	} `json:"failed"`
}

// testAdminImport: POST /users:import takes JSON Lines and reports what it
// imported, skipped (taken usernames, with their line) and failed (with
// their line, the rest going on); a re-run imports nothing; a body of
// another type or over the limit imports nothing.
func testAdminImport(t *testing.T, f *adminFixture) {
	hash, err := login.DefaultArgon2id.Hash("an imported password")
	if err != nil {
		t.Fatal(err)
	}
	lines := []byte(`{"username":"imp1","email":"imp1@example.com","password_hash":"` + hash + `","roles":["editor"],"attributes":{"src":"cms"}}
{"username":"imp2"}
not json
{"username":"alice"}
`)
	var rep importReport
	f.raw(t, http.MethodPost, "/api/v1/users:import", f.token, "application/x-ndjson", lines).want(t, http.StatusOK).decode(t, &rep)
	if rep.Imported != 2 || len(rep.Skipped) != 1 || rep.Skipped[0].Line != 4 || len(rep.Failed) != 1 || rep.Failed[0].Line != 3 {
		t.Fatalf("import report: %+v", rep)
	}
	u := f.call(t, http.MethodGet, "/api/v1/users/by-username/imp1", nil).want(t, http.StatusOK).object(t)
	if !reflect.DeepEqual(u["roles"], []any{"editor"}) || !reflect.DeepEqual(u["attributes"], map[string]any{"src": "cms"}) {
		t.Errorf("imported user: %v", u)
	}
	rep = importReport{}
	f.raw(t, http.MethodPost, "/api/v1/users:import", f.token, "application/x-ndjson", lines).want(t, http.StatusOK).decode(t, &rep)
	if rep.Imported != 0 || len(rep.Skipped) != 3 || len(rep.Failed) != 1 {
		t.Fatalf("a re-run: %+v", rep)
	}

	one := []byte(`{"username":"imp3"}` + "\n")
	f.raw(t, http.MethodPost, "/api/v1/users:import", f.token, "application/json", one).problem(t, http.StatusUnsupportedMediaType)
	huge := append(bytes.Repeat([]byte(`{"username":"imp4"}`+"\n"), 1), bytes.Repeat([]byte(" "), 1<<20)...)
	f.raw(t, http.MethodPost, "/api/v1/users:import", f.token, "application/x-ndjson", huge).problem(t, http.StatusRequestEntityTooLarge)
	for _, name := range []string{"imp3", "imp4"} {
		f.call(t, http.MethodGet, "/api/v1/users/by-username/"+name, nil).problem(t, http.StatusNotFound)
	}
	f.raw(t, http.MethodPost, "/api/v1/users:import", f.token, "application/x-ndjson", one).want(t, http.StatusOK).decode(t, &rep)
	if rep.Imported != 1 {
		t.Errorf("the positive control: %+v", rep)
	}
	f.raw(t, http.MethodPost, "/api/v1/users:import", "", "application/x-ndjson", one).problem(t, http.StatusUnauthorized)
}
