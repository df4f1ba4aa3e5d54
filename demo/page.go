package demo

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

// staticPath serves the demo page's stylesheet and script: on top of the
// login pages' look, a layout that fits a phone (long tokens wrap, JSON
// scrolls inside its box) and the copy buttons.
const staticPath = "/demo/static/"

//go:embed page.html static
var pageFS embed.FS

var (
	page        = template.Must(template.ParseFS(pageFS, "page.html"))
	staticFiles = must(fs.Sub(pageFS, "static"))
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// view is what page.html shows: a result or a problem, and where to sign in again.
type view struct {
	Result  *result
	Problem *problem
	Again   string // the path that starts a sign-in as this client
	Issuer  string
	Backend string
}

// ExportLine is the access token as a shell line, for the README's
// examples that read $ACCESS_TOKEN.
func (v view) ExportLine() string { return "export ACCESS_TOKEN=" + shellQuote(v.Result.RawAccess) }

// Audience is what the page's validation example passes as -audience.
func (v view) Audience() string {
	if v.Backend != "" {
		return v.Backend
	}
	return "demo"
}

// shellQuote quotes s for a POSIX shell. A token never holds a quote, but
// the line must stay right if one did.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (h *Handler) render(w http.ResponseWriter, status int, v view) {
	v.Issuer, v.Backend = h.cfg.Issuer, h.cfg.Backend
	var buf bytes.Buffer
	if err := page.Execute(&buf, v); err != nil {
		h.cfg.Log.Error("demo client: render page", "err", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("The demo page could not be shown; the server's log says why.\n"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; "+
		"form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
	// The address holds an (already used) authorization code: no referrer.
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	buf.WriteTo(w)
}
