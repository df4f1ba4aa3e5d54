package main

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/admin"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestAdminAPI drives the management API as a CMS backend would, over a
// real listener, on SQLite and on PostgreSQL; every response is checked
// against the OpenAPI document (admin_harness_test.go).
func TestAdminAPI(t *testing.T) {
	scenarios := []struct {
		name string
		fn   func(*testing.T, *adminFixture)
	}{
		{"Authorization", testAdminAuthorization},
		{"Users", testAdminUsers},
		{"PatchAndPut", testAdminPatchPut},
		{"ETagConflicts", testAdminETags},
		{"SignInCarriesRolesAndAttributes", testAdminSignIn},
		{"ChangesRevokeRefreshTokens", testAdminRevocation},
		{"SessionsAndFactors", testAdminSessionsFactors},
		{"PaginationUnderInserts", testAdminPagination},
		{"ClientsNeverShowSecrets", testAdminClients},
		{"Events", testAdminEvents},
		{"HostileInput", testAdminHostile},
		{"Import", testAdminImport},
		{"UnknownRoutes", testAdminRoutes},
	}
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					f := newAdminFixture(t, d.URL(t))
					sc.fn(t, f)
					if f.check.checked.Load() == 0 {
						t.Error("no response was checked against the OpenAPI document")
					}
				})
			}
		})
	}
}

// testAdminAuthorization: only a client's own token with stile:admin opens
// the API. No token, a garbage one, a user's token, a client token without
// the scope, a token asked for without naming the scope, an expired one,
// a revoked one and one whose client lost the scope are all refused —
// beside the admin token (JWT and opaque) that works.
func testAdminAuthorization(t *testing.T, f *adminFixture) {
	if admin.Scope != op.ScopeAdmin {
		t.Fatalf("admin.Scope %q and op.ScopeAdmin %q differ", admin.Scope, op.ScopeAdmin)
	}
	ok := func(what, token string) {
		t.Helper()
		if r := f.raw(t, http.MethodGet, "/api/v1/clients", token, "", nil); r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", what, r.status, r.body)
		}
	}
	refused := func(what, token string, status int) {
		t.Helper()
		r := f.raw(t, http.MethodGet, "/api/v1/clients", token, "", nil)
		r.problem(t, status)
		challenge := r.header.Get("WWW-Authenticate")
		if !strings.HasPrefix(challenge, "Bearer ") ||
			(status == http.StatusForbidden && !strings.Contains(challenge, `error="insufficient_scope"`)) {
			t.Errorf("%s: WWW-Authenticate %q", what, challenge)
		}
	}
	ok("the admin token", f.token)
	refused("no token", "", http.StatusUnauthorized)
	refused("a garbage token", "not-a-token", http.StatusUnauthorized)
	refused("a user's access token", f.accessToken(t), http.StatusForbidden)
	// A user who asks for stile:admin at /authorize still gets no way in.
	f.nextStep()
	az := f.rp.authorize("scope", "openid "+admin.Scope)
	refused("a user's token asked with stile:admin", f.tokens(t, f.signIn(t, newBrowser(t, f.s), az, f.alice), az).AccessToken,
		http.StatusForbidden)

	// A client allowed another scope only; and cms asking for no scope gets
	// its defaults, which never include stile:admin.
	var made map[string]any
	jsonInto(t, f.s.stile(t, "client", "add", "--id", "reader", "--type", "web", "--grant-type", "client_credentials",
		"--scope", "api:read", "--json"), &made)
	refused("a client token without stile:admin", f.clientToken(t, "reader", made["client_secret"].(string), "api:read"), http.StatusForbidden)
	resp, body := rawToken(t, f.s, map[string][]string{"grant_type": {"client_credentials"}, "scope": {admin.Scope}},
		"reader", made["client_secret"].(string))
	if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_scope" {
		t.Errorf("a client not allowed stile:admin asking for it: %d %v", resp.StatusCode, body)
	}
	refused("cms's token asked without a scope", f.clientToken(t, "cms", f.cmsSecret, ""), http.StatusForbidden)

	// Opaque tokens work the same way.
	jsonInto(t, f.s.stile(t, "client", "add", "--id", "cms-opaque", "--type", "web", "--grant-type", "client_credentials",
		"--scope", "stile:admin", "--access-token-format", "opaque", "--json"), &made)
	opaque := f.clientToken(t, "cms-opaque", made["client_secret"].(string), admin.Scope)
	ok("an opaque admin token", opaque)

	// Revoked: refused; the other token still works.
	if status := f.revoke(t, opaque, "", "cms-opaque", made["client_secret"].(string)); status != http.StatusOK {
		t.Fatalf("revoke: %d", status)
	}
	refused("a revoked token", opaque, http.StatusUnauthorized)
	ok("the admin token after another was revoked", f.token)

	// The operator takes the scope away: cms's live token stops at once.
	second := f.clientToken(t, "cms", f.cmsSecret, admin.Scope)
	f.s.stile(t, "client", "update", "cms-opaque", "--scope", "")
	refused("a token whose client lost stile:admin", f.clientToken(t, "cms-opaque", made["client_secret"].(string), ""), http.StatusForbidden)
	ok("a fresh admin token", second)

	// Expired: ten minutes on, refused; a new token works.
	f.s.clock.Advance(10*time.Minute + time.Second)
	refused("an expired token", f.token, http.StatusUnauthorized)
	ok("a new admin token", f.clientToken(t, "cms", f.cmsSecret, admin.Scope))
}

// testAdminClients: clients are listed and read with their metadata and
// never a secret, its digest or an API key.
func testAdminClients(t *testing.T, f *adminFixture) {
	var list struct {
		Clients []map[string]any `json:"clients"`
	}
	f.call(t, http.MethodGet, "/api/v1/clients", nil).want(t, http.StatusOK).decode(t, &list)
	var ids []string
	for _, c := range list.Clients {
		ids = append(ids, c["client_id"].(string))
		for k := range c {
			if strings.Contains(k, "hash") || strings.Contains(k, "mac") || k == "client_secret" || k == "secret" {
				t.Errorf("client %v shows %s", c["client_id"], k)
			}
		}
	}
	if !slices.Contains(ids, "app") || !slices.Contains(ids, "cms") {
		t.Fatalf("clients %v", ids)
	}
	c := f.call(t, http.MethodGet, "/api/v1/clients/cms", nil).want(t, http.StatusOK).object(t)
	if c["has_secret"] != true || !slices.Contains(anyStrings(c["allowed_scopes"]), admin.Scope) ||
		strings.Contains(string(f.call(t, http.MethodGet, "/api/v1/clients/cms", nil).body), f.cmsSecret) {
		t.Errorf("client cms: %v", c)
	}
	f.call(t, http.MethodGet, "/api/v1/clients/nobody", nil).problem(t, http.StatusNotFound)
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// testAdminRoutes: unknown paths and methods under /api/v1 answer
// problems (404; 405 with Allow); the document needs no token.
func testAdminRoutes(t *testing.T, f *adminFixture) {
	f.call(t, http.MethodGet, "/api/v1/nothing", nil).problem(t, http.StatusNotFound)
	f.raw(t, http.MethodGet, "/api/v1/nothing", "", "", nil).problem(t, http.StatusNotFound)
	r := f.call(t, http.MethodPost, "/api/v1/clients", nil)
	r.problem(t, http.StatusMethodNotAllowed)
	if r.header.Get("Allow") != "GET" {
		t.Errorf("Allow %q", r.header.Get("Allow"))
	}
	doc := f.raw(t, http.MethodGet, "/api/v1/openapi.json", "", "", nil).want(t, http.StatusOK)
	if string(doc.body) != string(admin.Document) {
		t.Error("the served document is not the embedded one")
	}
	var _ = storage.Rate{}
}

// TestOpenAPICheckCatchesDrift: the response check is not a rubber stamp.
// A user with a field the document does not have, a problem without its
// type, an undocumented status and a user without its ETag are each
// reported; the same user as the API returns it passes.
func TestOpenAPICheckCatchesDrift(t *testing.T) {
	c := newOpenAPICheck(t)
	user := `{"uid":"u1","username":"a","email":"","phone":"","roles":[],"attributes":{},"disabled":false,` +
		`"preferred_method":"","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","version":1`
	respond := func(status int, ct, body string, etag bool) []string {
		req, _ := http.NewRequest(http.MethodGet, "http://stile.test/api/v1/users/u1", nil)
		h := http.Header{"Content-Type": {ct}}
		if etag {
			h.Set("ETag", `"1"`)
		}
		resp := &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: req}
		return c.mismatches(req, resp, []byte(body))
	}
	if p := respond(http.StatusOK, "application/json", user+"}", true); len(p) > 0 {
		t.Fatalf("a valid user was refused: %v", p)
	}
	for name, p := range map[string][]string{
		"a password hash":        respond(http.StatusOK, "application/json", user+`,"password_hash":"$argon2id$"}`, true),
		"no ETag":                respond(http.StatusOK, "application/json", user+"}", false),
		"a problem without type": respond(http.StatusNotFound, "application/problem+json", `{"title":"x","status":404}`, false),
		"an undocumented status": respond(http.StatusTeapot, "application/json", user+"}", true),
	} {
		if len(p) == 0 {
			t.Errorf("%s passed the check", name)
		}
	}
}
