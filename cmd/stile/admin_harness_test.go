package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/helpers"

	"github.com/stile-id/stile/admin"
)

// adminFixture is the sign-in fixture plus the management API's client:
// "cms", made with the CLI as an operator would (client_credentials,
// allowed stile:admin), and an HTTP client whose every response from
// /api/v1 is validated against the OpenAPI document.
type adminFixture struct {
	*fixture
	cmsSecret string
	token     string // cms's access token with stile:admin
	api       *http.Client
	check     *openAPICheck
}

func newAdminFixture(t *testing.T, dbURL string, opts ...func(*appConfig)) *adminFixture {
	t.Helper()
	f := &adminFixture{fixture: newFixture(t, dbURL, opts...), check: newOpenAPICheck(t)}
	f.api = &http.Client{Transport: f.check}
	var made map[string]any
	jsonInto(t, f.s.stile(t, "client", "add", "--id", "cms", "--type", "web", "--grant-type", "client_credentials",
		"--scope", "stile:admin", "--json"), &made)
	f.cmsSecret, _ = made["client_secret"].(string)
	f.token = f.clientToken(t, "cms", f.cmsSecret, admin.Scope)
	return f
}

// clientToken is a client_credentials access token for scope ("" asks none).
func (f *adminFixture) clientToken(t *testing.T, clientID, secret, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	resp, body := rawToken(t, f.s, form, clientID, secret)
	tok, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || tok == "" {
		t.Fatalf("client_credentials for %s, scope %q: %d %v", clientID, scope, resp.StatusCode, body)
	}
	return tok
}

// adminAnswer is one answer of the API.
type adminAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (r adminAnswer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("status %d, body not JSON: %v\n%s", r.status, err, r.body)
	}
}

// object is the body as a JSON object.
func (r adminAnswer) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.decode(t, &m)
	return m
}

// problem is the body as a problem; it fails unless the answer is one
// with status want.
func (r adminAnswer) problem(t *testing.T, want int) admin.Problem {
	t.Helper()
	var p admin.Problem
	r.decode(t, &p)
	if r.status != want || p.Status != want || r.header.Get("Content-Type") != "application/problem+json" ||
		p.Type != admin.ProblemType(want) || p.Title == "" {
		t.Fatalf("want a %d problem, got %d %s: %s", want, r.status, r.header.Get("Content-Type"), r.body)
	}
	return p
}

// problemFields are the fields a 400 or 409 problem names.
func problemFields(p admin.Problem) []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// raw sends a request to the API with the given token ("" none) and body
// of content type ct; headers are name, value pairs.
func (f *adminFixture) raw(t *testing.T, method, path, token, ct string, body []byte, headers ...string) adminAnswer {
	t.Helper()
	req, err := http.NewRequest(method, f.s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := f.api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return adminAnswer{status: resp.StatusCode, header: resp.Header, body: b}
}

// call sends v (nil: no body) as JSON — as a merge patch for PATCH — with
// the admin token.
func (f *adminFixture) call(t *testing.T, method, path string, v any, headers ...string) adminAnswer {
	t.Helper()
	var body []byte
	ct := ""
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
		ct = "application/json"
		if method == http.MethodPatch {
			ct = "application/merge-patch+json"
		}
	}
	return f.raw(t, method, path, f.token, ct, body, headers...)
}

// want fails the test unless the answer has status want.
func (r adminAnswer) want(t *testing.T, want int) adminAnswer {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
	return r
}

// openAPICheck is a transport that validates every response from
// /api/v1 against the OpenAPI document (libopenapi-validator): status,
// headers, content type and body schema. A response to a path or method
// the document does not have (404, 405 from the router) must still be a
// problem.
type openAPICheck struct {
	t       *testing.T
	mu      sync.Mutex
	v       validator.Validator
	checked atomic.Int64
}

func newOpenAPICheck(t *testing.T) *openAPICheck {
	t.Helper()
	doc, err := libopenapi.NewDocument(admin.Document)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions())
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	return &openAPICheck{t: t, v: v}
}

func (c *openAPICheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.Path, "/api/v1/") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	c.validate(req, resp, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (c *openAPICheck) validate(req *http.Request, resp *http.Response, body []byte) {
	c.checked.Add(1)
	for _, p := range c.mismatches(req, resp, body) {
		c.t.Errorf("%s %s: %d does not match the OpenAPI document: %s\n%s", req.Method, req.URL.Path, resp.StatusCode, p, body)
	}
}

// mismatches lists how a response departs from the document.
func (c *openAPICheck) mismatches(req *http.Request, resp *http.Response, body []byte) []string {
	c.mu.Lock()
	ok, errs := c.v.ValidateHttpResponse(req, resp)
	c.mu.Unlock()
	if ok {
		return nil
	}
	if len(errs) == 1 && errs[0].ValidationType == helpers.PathValidation &&
		(resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed) {
		if err := undocumentedProblem(resp, body); err != "" {
			return []string{err}
		}
		return nil
	}
	var out []string
	for _, e := range errs {
		out = append(out, e.Message+" ("+e.Reason+")")
		for _, se := range e.SchemaValidationErrors {
			out = append(out, "  at "+se.FieldPath+": "+se.Reason)
		}
	}
	return out
}

// undocumentedProblem checks a router answer outside the document:
// a problem with exactly the problem fields.
func undocumentedProblem(resp *http.Response, body []byte) string {
	if resp.Header.Get("Content-Type") != "application/problem+json" {
		return "not application/problem+json"
	}
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return "not a JSON object"
	}
	for k := range m {
		if !strings.Contains(" type title status detail errors ", " "+k+" ") {
			return "unknown problem member " + k
		}
	}
	if m["type"] == nil || m["title"] == nil || m["status"] != float64(resp.StatusCode) {
		return "type, title or status missing"
	}
	return ""
}
