package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// Media types the API reads and writes.
const (
	typeJSON       = "application/json"
	typeMergePatch = "application/merge-patch+json"
	typeNDJSON     = "application/x-ndjson"
)

// maxBody caps a JSON request body: a user with attributes at their cap
// fits many times over.
const maxBody = 64 << 10

// readBody reads the request body, which must be of media type want and
// at most limit bytes. An empty body is returned as nil when allowEmpty.
func readBody(w http.ResponseWriter, r *http.Request, want string, limit int64, allowEmpty bool) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errTooLarge
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" && allowEmpty && r.ContentLength <= 0 {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1))
		if err != nil || len(b) > 0 {
			return nil, unsupportedType(want)
		}
		return nil, nil
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != want {
		return nil, unsupportedType(want)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, errTooLarge
	case err != nil:
		return nil, fmt.Errorf("read the request body: %w", err)
	case len(b) == 0 && allowEmpty:
		return nil, nil
	}
	return b, nil
}

// decodeObject reads a JSON object body into dst, a pointer to a struct.
// Every key that is not one of dst's JSON fields is refused, each named.
func decodeObject(w http.ResponseWriter, r *http.Request, want string, dst any, allowEmpty bool) (map[string]json.RawMessage, error) {
	b, err := readBody(w, r, want, maxBody, allowEmpty)
	if err != nil || b == nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, badField("body", "must be one JSON object")
	}
	if err := knownFields(m, jsonFields(dst)); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return nil, typeError(err)
	}
	return m, nil
}

// knownFields refuses the keys of m that are not in fields, naming each.
func knownFields(m map[string]json.RawMessage, fields []string) error {
	var issues []FieldIssue
	for k := range m {
		if !slices.Contains(fields, k) {
			issues = append(issues, FieldIssue{Field: k, Reason: "unknown field"})
		}
	}
	if len(issues) == 0 {
		return nil
	}
	sort.Slice(issues, func(i, j int) bool { return issues[i].Field < issues[j].Field })
	return &invalid{issues: issues}
}

// typeError names the field a JSON value of the wrong type was given for.
func typeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		field, _, _ := strings.Cut(te.Field, ".")
		return badField(field, "must be "+jsonKind(te.Type))
	}
	return badField("body", "must be one JSON object")
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "an array of strings"
	case reflect.Map:
		return "a JSON object"
	}
	return "of another type"
}

// jsonFields lists the JSON names of the struct v points to.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v).Elem()
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// writeJSON answers v as JSON. Nothing the API returns may be cached:
// it is personal data, read with a bearer token.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", typeJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// queryParams returns the request's query parameters after refusing any
// that is not in allowed, or given twice.
func queryParams(r *http.Request, allowed ...string) (map[string]string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badField("query", "not a valid query string")
	}
	var issues []FieldIssue
	out := map[string]string{}
	for k, vs := range q {
		switch {
		case !slices.Contains(allowed, k):
			issues = append(issues, FieldIssue{Field: k, Reason: "unknown query parameter"})
		case len(vs) > 1:
			issues = append(issues, FieldIssue{Field: k, Reason: "given more than once"})
		default:
			out[k] = vs[0]
		}
	}
	if len(issues) > 0 {
		sort.Slice(issues, func(i, j int) bool { return issues[i].Field < issues[j].Field })
		return nil, &invalid{issues: issues}
	}
	return out, nil
}
