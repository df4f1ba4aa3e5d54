// Package edge refuses, before any handler runs, requests whose text is not
// text: a path, query value, form value (url-encoded or multipart), Basic
// client credential or JSON string that is not valid UTF-8 or holds a NUL.
//
// Why here and not in each handler: such bytes reach the database by many
// ways (username, client_id at the token endpoint, login_hint, state, nonce
// stored with the auth request…), and PostgreSQL refuses them with "invalid
// byte sequence" — a 500 for what is the caller's mistake, and a different
// answer from SQLite's, which stores them. One check at the edge covers
// every way in, including those added later. encoding/json already turns
// invalid bytes into U+FFFD, but an escaped \u0000 decodes to a NUL, so JSON
// strings are checked for NUL only.
//
// The 400 has the shape of the route: the login JSON APIs' {status, error,
// message}; an RFC 6749 error object on the OAuth endpoints; a short page
// elsewhere (the login pages, /authorize, /end_session).
package edge

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Text is the middleware. The body, if it had to be read, is handed on
// unchanged, read error included, so handlers see what they would have.
func Text(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !requestIsText(r) {
			refuse(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isText: valid UTF-8 without NUL, which PostgreSQL's text cannot hold.
func isText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

func valuesAreText(v url.Values) bool {
	for k, vs := range v {
		if !isText(k) {
			return false
		}
		for _, s := range vs {
			if !isText(s) {
				return false
			}
		}
	}
	return true
}

func requestIsText(r *http.Request) bool {
	if !isText(r.URL.Path) {
		return false
	}
	// A malformed pair is dropped here as the handlers' own parsing drops it.
	q, _ := url.ParseQuery(r.URL.RawQuery)
	if !valuesAreText(q) {
		return false
	}
	if !basicIsText(r) {
		return false
	}
	return bodyIsText(r)
}

// basicIsText checks HTTP Basic client credentials, raw and form-decoded
// (RFC 6749 §2.3.1 has client_id and secret form-encoded there, and the
// provider decodes them before looking the client up).
func basicIsText(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return true
	}
	for _, s := range []string{user, pass} {
		if !isText(s) {
			return false
		}
		if u, err := url.QueryUnescape(s); err == nil && !isText(u) {
			return false
		}
	}
	return true
}

func bodyIsText(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return true // not a form nor JSON: no handler reads it as one
	}
	var check func([]byte) bool
	switch mt {
	case "application/x-www-form-urlencoded":
		check = func(b []byte) bool { v, _ := url.ParseQuery(string(b)); return valuesAreText(v) }
	case "multipart/form-data":
		check = func(b []byte) bool { return multipartIsText(b, params["boundary"]) }
	case "application/json":
		check = jsonHasNoNUL
	default:
		return true
	}
	b, err := io.ReadAll(r.Body) // bounded by the body limit around the application
	r.Body = replay{Reader: io.MultiReader(bytes.NewReader(b), errReader{err}), Closer: r.Body}
	return err != nil || check(b) // a body that could not be read fails in its handler
}

// replay hands the body read so far on, then the error the read ended with.
type replay struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err == nil {
		return 0, io.EOF
	}
	return 0, e.err
}

// multipartIsText checks every part's name, file name and, for fields,
// value. A malformed body passes: the handler's parser refuses it.
func multipartIsText(b []byte, boundary string) bool {
	if boundary == "" {
		return true
	}
	mr := multipart.NewReader(bytes.NewReader(b), boundary)
	for {
		p, err := mr.NextPart()
		if err != nil {
			return true
		}
		if !isText(p.FormName()) || !isText(p.FileName()) {
			return false
		}
		if p.FileName() == "" {
			v, err := io.ReadAll(p)
			if err == nil && !isText(string(v)) {
				return false
			}
		}
	}
}

// jsonHasNoNUL walks the JSON's tokens: no string, key or value, may hold
// a NUL. A malformed document passes: the handler's decoder refuses it.
func jsonHasNoNUL(b []byte) bool {
	if !bytes.Contains(b, []byte(`\u0000`)) && bytes.IndexByte(b, 0) < 0 {
		return true // the only ways a NUL gets into a decoded string
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		t, err := dec.Token()
		if err != nil {
			return true
		}
		if s, ok := t.(string); ok && strings.IndexByte(s, 0) >= 0 {
			return false
		}
	}
}
