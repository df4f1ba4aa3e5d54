package admin_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/stile-id/stile/admin"
)

// TestDocumentParses: the document is OpenAPI 3.1 that libopenapi builds
// a model of without error and that the validator accepts as valid.
func TestDocumentParses(t *testing.T) {
	doc, err := libopenapi.NewDocument(admin.Document)
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("OpenAPI version %q, want 3.1", v)
	}
	if _, err := doc.BuildV3Model(); err != nil {
		t.Fatalf("build the model: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("document: %s (%s)", e.Message, e.Reason)
		}
	}
}

// TestDocumentMatchesRouter: the document's paths and methods are exactly
// the router's, so neither can grow without the other.
func TestDocumentMatchesRouter(t *testing.T) {
	r := mux.NewRouter()
	admin.New(admin.Config{}).Mount(r)
	pattern := regexp.MustCompile(`\{([a-z]+):[^}]*\}`)
	var routed []string
	err := r.Walk(func(rt *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := rt.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, err := rt.GetMethods()
		if err != nil {
			return nil // the /api/v1 prefix itself
		}
		for _, m := range methods {
			if m != http.MethodHead {
				routed = append(routed, m+" "+pattern.ReplaceAllString(path, "{$1}"))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(admin.Document, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for p, item := range doc.Paths {
		for m := range item {
			if m != "parameters" {
				documented = append(documented, strings.ToUpper(m)+" "+p)
			}
		}
	}
	sort.Strings(routed)
	sort.Strings(documented)
	if !slices.Equal(routed, documented) {
		t.Errorf("router and document differ:\nrouter:   %v\ndocument: %v", routed, documented)
	}
	if len(routed) < 20 {
		t.Errorf("only %d routes walked: %v", len(routed), routed)
	}
}
