package edge

import (
	"encoding/json"
	"net/http"
	"strings"
)

const message = "The request holds text that is not valid UTF-8, or a NUL character."

// The login JSON APIs (login.Handler's apiResponse) and the OAuth endpoints
// (RFC 6749 §5.2) each get their own error body; everything else is a page.
var (
	loginAPIs = []string{"/login/api/", "/headless/", "/account/api/"}
	oauthAPIs = []string{"/oauth/", "/revoke", "/userinfo"}
)

func hasAnyPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func refuse(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	switch {
	case hasAnyPrefix(r.URL.Path, loginAPIs):
		writeJSON(w, map[string]string{"status": "FAILED", "error": "invalid_request", "message": message})
	case hasAnyPrefix(r.URL.Path, oauthAPIs):
		writeJSON(w, map[string]string{"error": "invalid_request", "error_description": message})
	default:
		// The same headers as stile's own pages: nothing inline, no framing.
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(page))
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(v)
}

const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bad request</title></head>
<body><main><h1>Bad request</h1>
<p>` + message + ` Go back to the application and try again.</p></main></body></html>
`
