package op

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
)

// The library answers the token, introspection and revocation endpoints'
// errors in three shapes: RFC 6749 JSON whose error_description is its own
// internal text ("refresh_token missing", "invalid client_id /
// client_secret"), a text/plain dump of the Go error at introspection
// ("ErrorType=unauthorized_client Parent=…"), and a 401 without
// WWW-Authenticate. oauthErrors sits between stile and the library at those
// endpoints and rewrites every error it answers into one shape: RFC 6749
// §5.2 JSON ({"error", "error_description"}, Content-Type
// application/json, Cache-Control no-store), in stile's words, 401 with
// WWW-Authenticate: Basic for invalid_client when the client tried Basic.
// The library's text goes to the log beside the request, never to the
// caller. stile's own answers around the library (limits, unoffered grants)
// are already in this shape and are not seen here.

// oauthErrors is the middleware; it also answers methods other than POST
// (and OPTIONS, the CORS preflight) with 405: RFC 6749 §3.2, RFC 7662 §2.1
// and RFC 7009 §2.1 take POST only.
func oauthErrors(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodOptions {
			w.Header().Set("Allow", "POST")
			writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "This endpoint takes POST only.")
			return
		}
		c := &errorCapture{ResponseWriter: w}
		next.ServeHTTP(c, r)
		if !c.held {
			return
		}
		code, detail := parseLibraryError(c.Header().Get("Content-Type"), c.body.Bytes())
		status := oauthStatus(code, c.status)
		desc := describe(code, detail)
		log.InfoContext(r.Context(), "oauth error", "path", r.URL.Path, "status", status, "error", code,
			"detail", detail, "remote", r.RemoteAddr)
		if code == "invalid_client" && hasBasic(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="stile"`)
		}
		writeOAuthError(w, status, code, desc)
	})
}

// errorCapture holds back any answer of 400 or more so oauthErrors can
// rewrite it; successes pass straight through.
type errorCapture struct {
	http.ResponseWriter
	status int
	held   bool
	body   bytes.Buffer
}

func (c *errorCapture) WriteHeader(status int) {
	c.status = status
	if status >= 400 {
		c.held = true
		return
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *errorCapture) Write(b []byte) (int, error) {
	if c.held {
		return c.body.Write(b)
	}
	return c.ResponseWriter.Write(b)
}

func (c *errorCapture) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok && !c.held {
		f.Flush()
	}
}

func hasBasic(r *http.Request) bool {
	_, _, ok := r.BasicAuth()
	return ok
}

// parseLibraryError reads the error code and the library's description out
// of its answer: JSON, or the text of an *oidc.Error ("ErrorType=x
// Description=… Parent=…"), whose innermost ErrorType is the real cause
// (introspection wraps invalid_client in unauthorized_client).
func parseLibraryError(contentType string, body []byte) (code, detail string) {
	if strings.HasPrefix(contentType, "application/json") {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return e.Error, e.Description
		}
	}
	text := strings.TrimSpace(string(body))
	if i := strings.LastIndex(text, "ErrorType="); i >= 0 {
		code, _, _ = strings.Cut(text[i+len("ErrorType="):], " ")
		return code, text
	}
	return "invalid_request", text
}

// oauthStatus is the status for an error code (RFC 6749 §5.2): 401 for a
// client that failed to authenticate, 500 for stile's own faults, 503 when
// busy, else what the library chose (400 as a rule).
func oauthStatus(code string, status int) int {
	switch code {
	case "invalid_client":
		return http.StatusUnauthorized
	case "server_error":
		return http.StatusInternalServerError
	case "temporarily_unavailable":
		return http.StatusServiceUnavailable
	}
	if status == http.StatusUnauthorized || status < 400 {
		return http.StatusBadRequest
	}
	return status
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Del("Content-Length")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// libraryWords puts the library's descriptions into stile's. Keys are the
// library's exact text (github.com/zitadel/oidc/v3/pkg/op and pkg/oidc).
var libraryWords = map[string]string{
	"grant_type missing":                                     "grant_type is required.",
	"code missing":                                           "code is required.",
	"refresh_token missing":                                  "refresh_token is required.",
	"invalid code":                                           "The authorization code is not valid: it is unknown, expired or already used.",
	"invalid refresh token":                                  "The refresh token is not valid: it is unknown, expired or revoked.",
	"invalid client_id / client_secret":                      "Client authentication failed: the client ID or secret is wrong.",
	"invalid client credentials":                             "Client authentication failed: the client ID or secret is wrong.",
	"unknown client":                                         "Client authentication failed: the client ID or secret is wrong.",
	"invalid authorization":                                  "The client must authenticate (HTTP Basic, or client_id with client_secret in the body).",
	"no client credentials provided":                         "The client must authenticate (HTTP Basic, or client_id with client_secret in the body).",
	"client_id missing from request":                         "The client must authenticate (HTTP Basic, or client_id with client_secret in the body).",
	"invalid basic auth header":                              "The Authorization header is not valid HTTP Basic.",
	"unable to parse request":                                "The request is not a valid form.",
	"error decoding form":                                    "The request is not a valid form.",
	"auth_method private_key_jwt not supported":              "Client assertions (private_key_jwt) are not supported.",
	"redirect_uri does not correspond":                       "redirect_uri differs from the one of the authorization request.",
	"invalid code challenge":                                 "code_verifier does not match the authorization request's code_challenge.",
	"code_challenge required":                                "code_verifier is required (PKCE).",
	"client_credentials grant not supported":                 "This client may not use the client_credentials grant.",
	"The request is not a valid form.":                       "The request is not a valid form.",
	"This grant type is not supported.":                      "This grant type is not supported.",
	"The requested scope is invalid, unknown, or malformed.": "A requested scope is not allowed for this client.",
}

// codeWords is what a caller reads for a code when the library's
// description is not one stile knows.
var codeWords = map[string]string{
	"invalid_request":           "The request is missing a parameter or has one that is not valid.",
	"invalid_client":            "Client authentication failed.",
	"invalid_grant":             "The grant is not valid: it is unknown, expired, already used or was issued to another client.",
	"unauthorized_client":       "This client may not use this grant or this token.",
	"unsupported_grant_type":    "This grant type is not supported.",
	"invalid_scope":             "A requested scope is not allowed for this client.",
	"server_error":              "Something went wrong on the server. Try again later.",
	"temporarily_unavailable":   "The server is busy. Try again in a moment.",
	"access_denied":             "The request was denied.",
	"unsupported_response_type": "This response type is not supported: use code.",
	"login_required":            "The user is not signed in.",
	"interaction_required":      "The user must interact with the sign-in page.",
	"consent_required":          "The user has not allowed this client yet.",
	"request_not_supported":     "The request parameter is not supported.",
}

// describe is the error_description stile sends for an error the library
// answered with this code and description: stile's wording for a library
// text it knows, stile's own description unchanged (stile's storage
// returns them through the library), and the code's general wording for
// anything else that reads like a library's or Go's internals.
func describe(code, detail string) string {
	if w, ok := libraryWords[detail]; ok {
		return w
	}
	if detail != "" && !internalText(detail) && code != "server_error" {
		return detail
	}
	if w, ok := codeWords[code]; ok {
		return w
	}
	return "The request was refused."
}

// internalText reports text that is not stile's: the library's error dumps
// and phrasings, Go's and the database drivers' error strings.
func internalText(s string) bool {
	for _, m := range internalMarkers {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

var internalMarkers = []string{"ErrorType=", "Parent=", "unable to", "failed to", "http: ", "sql:", "pq:", "sqlite",
	"If you have any questions", "missing", "%!"}
