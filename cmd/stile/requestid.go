package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
)

// A request ID names one request in every log line written while it is
// handled and in its X-Request-ID response header, so an operator can find
// a user's failing request from what the browser shows.
//
// An X-Request-ID that comes in is kept only from a trusted proxy
// (--trusted-proxies), which has made or checked it: from anyone else it
// would let a caller write what they like into the log, or make many
// requests share one ID.

const requestIDHeader = "X-Request-ID"

type requestIDKey struct{}

// withRequestID carries id in ctx.
func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// requestIDFrom is the ID of the request ctx belongs to; "" outside one.
func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// newRequestID is a short random ID: 64 bits, 16 hex characters.
func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// wellFormedRequestID accepts what proxies generate (UUIDs, hex, nginx's
// $request_id) and nothing that could break a log line: at most 64 of
// [A-Za-z0-9._-].
func wellFormedRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// requestIDs gives every request its ID (a trusted proxy's, or a new one),
// in its context and in the response's X-Request-ID header.
func requestIDs(trusted []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(requestIDHeader)
		if !wellFormedRequestID(id) || !fromTrusted(trusted, r.RemoteAddr) {
			id = newRequestID()
		}
		w.Header().Set(requestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(withRequestID(r.Context(), id)))
	})
}

// fromTrusted reports whether the peer at remote (host:port) is a trusted
// proxy.
func fromTrusted(trusted []netip.Prefix, remote string) bool {
	if len(trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// hsts tells browsers to reach an https issuer over https only, for a
// year: on every response, whether stile terminates TLS itself or a proxy
// does (the browser sees the proxy's https either way). An http issuer
// gets none: the header is ignored over http and would only mislead.
func hsts(issuer string, next http.Handler) http.Handler {
	if !strings.HasPrefix(issuer, "https://") {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		next.ServeHTTP(w, r)
	})
}

// frame is what wraps every response stile sends, the application's and
// the starting server's alike: the request ID, then HSTS.
func frame(issuer string, trusted []netip.Prefix, next http.Handler) http.Handler {
	return requestIDs(trusted, hsts(issuer, next))
}

// requestIDHandler adds the request_id of the context a line is logged
// with (InfoContext, ErrorContext, LogAttrs) to the line.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestIDFrom(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
