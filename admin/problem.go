package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/storage"
)

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldIssue `json:"errors,omitempty"` // 400 and 409: the fields at fault
}

// FieldIssue names a field at fault and why.
type FieldIssue struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// invalid is a request the API refuses before the account service sees it.
type invalid struct{ issues []FieldIssue }

func (e *invalid) Error() string {
	return "invalid request: " + e.issues[0].Field + ": " + e.issues[0].Reason
}

func badField(field, reason string) error { return &invalid{issues: []FieldIssue{{field, reason}}} }

// Request-level refusals with their status.
type statusError struct {
	status int
	detail string
}

func (e *statusError) Error() string { return e.detail }

var (
	errTooLarge   = &statusError{http.StatusRequestEntityTooLarge, "The request body is too large."}
	errNotFound   = &statusError{http.StatusNotFound, "No such resource."}
	errStaleMatch = &statusError{http.StatusPreconditionFailed, "The resource changed: its ETag no longer matches If-Match."}
)

func unsupportedType(want string) error {
	return &statusError{http.StatusUnsupportedMediaType, "Send the body as " + want + "."}
}

// problemKinds are the problems the API answers with, by status: a stable
// type URI and title each.
var problemKinds = map[int]struct{ typ, title string }{
	http.StatusBadRequest:            {"invalid-request", "The request is not valid"},
	http.StatusUnauthorized:          {"unauthorized", "An access token is required"},
	http.StatusForbidden:             {"forbidden", "The access token does not allow this"},
	http.StatusNotFound:              {"not-found", "Not found"},
	http.StatusMethodNotAllowed:      {"method-not-allowed", "Method not allowed"},
	http.StatusConflict:              {"conflict", "Conflict"},
	http.StatusPreconditionFailed:    {"precondition-failed", "Precondition failed"},
	http.StatusRequestEntityTooLarge: {"payload-too-large", "The request body is too large"},
	http.StatusUnsupportedMediaType:  {"unsupported-media-type", "Unsupported media type"},
	http.StatusTooManyRequests:       {"rate-limited", "Too many requests"},
	http.StatusInternalServerError:   {"internal", "Internal error"},
}

// ProblemType is the type URI of a problem with the given status.
func ProblemType(status int) string { return "urn:stile:problem:" + problemKinds[status].typ }

// problem answers err as a problem: the single place where errors become
// status codes. Clients read a generic text; the log holds the detail of
// whatever is internal.
func (h *Handler) problem(w http.ResponseWriter, r *http.Request, err error) {
	p := classify(err)
	switch p.Status {
	case http.StatusInternalServerError:
		h.log.ErrorContext(r.Context(), "management API", "method", r.Method, "path", r.URL.Path, "err", err)
	case http.StatusUnauthorized:
		challenge := `Bearer realm="stile"`
		if r.Header.Get("Authorization") != "" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	case http.StatusForbidden:
		w.Header().Set("WWW-Authenticate", `Bearer realm="stile", error="insufficient_scope", scope="`+Scope+`"`)
	}
	writeProblem(w, p)
}

// classify maps an error to its problem.
func classify(err error) *Problem {
	var (
		inv *invalid
		se  *statusError
		fe  *account.FieldError
		lim *errLimited
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &inv):
		return newProblem(http.StatusBadRequest, "", inv.issues...)
	case errors.As(err, &se):
		return newProblem(se.status, se.detail)
	case errors.As(err, &mbe):
		return newProblem(http.StatusRequestEntityTooLarge, errTooLarge.detail)
	case errors.As(err, &lim):
		return newProblem(http.StatusTooManyRequests, "This client has made too many requests; retry after the time in Retry-After.")
	case errors.Is(err, ErrNoToken):
		return newProblem(http.StatusUnauthorized, "Send a client_credentials access token with the "+Scope+" scope.")
	case errors.Is(err, ErrScope):
		return newProblem(http.StatusForbidden, "This API needs a client's own access token with the "+Scope+" scope.")
	}
	status := accountStatus(err)
	if status == http.StatusInternalServerError {
		return newProblem(status, "The request could not be completed.")
	}
	if errors.As(err, &fe) {
		return newProblem(status, "", FieldIssue{Field: fe.Field, Reason: fe.Reason})
	}
	return newProblem(status, genericDetail[status])
}

// genericDetail explains an account error that names no field.
var genericDetail = map[int]string{
	http.StatusBadRequest:         "The request is not valid.",
	http.StatusNotFound:           "No such user.",
	http.StatusConflict:           "The request conflicts with the account's state.",
	http.StatusPreconditionFailed: errStaleMatch.detail,
}

// accountStatus is the status of an error from the account service or
// the store.
func accountStatus(err error) int {
	switch {
	case errors.Is(err, account.ErrInvalid), errors.Is(err, storage.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, account.ErrNotFound), errors.Is(err, storage.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, account.ErrConflict), errors.Is(err, storage.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, account.ErrStale):
		return http.StatusPreconditionFailed
	}
	return http.StatusInternalServerError
}

func newProblem(status int, detail string, issues ...FieldIssue) *Problem {
	k := problemKinds[status]
	if detail == "" && len(issues) > 0 {
		detail = issues[0].Field + ": " + issues[0].Reason
	}
	return &Problem{Type: ProblemType(status), Title: k.title, Status: status, Detail: detail, Errors: issues}
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// notFound answers 404, or 405 where the path exists for other methods:
// gorilla/mux 1.8.1 reports a method mismatch as "not found" whenever a
// later route's path differs, so the router is asked for each method.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	if len(h.allowed(r)) > 0 {
		h.methodNotAllowed(w, r)
		return
	}
	writeProblem(w, newProblem(http.StatusNotFound, "No such resource in the management API."))
}

// methodNotAllowed answers 405 with the methods the path does allow
// (RFC 9110 §15.5.6).
func (h *Handler) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", strings.Join(h.allowed(r), ", "))
	writeProblem(w, newProblem(http.StatusMethodNotAllowed, "This resource does not answer "+r.Method+"."))
}

// allowed lists the methods the router answers at r's path.
func (h *Handler) allowed(r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if m != r.Method && h.router.Match(probe, &match) && match.MatchErr == nil {
			allow = append(allow, m)
		}
	}
	return allow
}
