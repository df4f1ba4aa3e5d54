package op

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stile-id/stile/storage"
)

// callback guards the library's /authorize/callback. The library would
// answer anyone holding the request ID; stile answers only the browser the
// login is bound to, and only once. A login that ended in an OAuth error
// (login_required for prompt=none) is answered with that error.
func (p *Provider) callback(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id := r.URL.Query().Get("id")
		if err := p.checkBrowser(r, id); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				renderProblem(w, problemExpired)
				return
			}
			p.log.InfoContext(ctx, "callback refused", "reason", err.Error(), "remote", r.RemoteAddr)
			renderProblem(w, problemOtherBrowser)
			return
		}
		if err := p.db.ClaimCallback(ctx, id); err != nil {
			p.log.InfoContext(ctx, "callback refused", "reason", err.Error(), "remote", r.RemoteAddr)
			renderProblem(w, problemExpired)
			return
		}
		ar, err := p.db.GetAuthRequest(ctx, id)
		if err != nil {
			p.log.ErrorContext(ctx, "callback", "err", err)
			renderProblem(w, problemServer)
			return
		}
		if ar.ErrorCode != "" {
			wrapped, err := p.storage.wrap(ctx, ar)
			if err != nil {
				p.log.ErrorContext(ctx, "callback", "err", err)
				renderProblem(w, problemServer)
				return
			}
			zop.AuthRequestError(w, r, wrapped, oauthError(ar.ErrorCode), p.zop)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// oauthError turns an error code recorded by the login into the library's
// error value.
func oauthError(code string) *oidc.Error {
	switch code {
	case "login_required":
		return oidc.ErrLoginRequired()
	case "interaction_required":
		return oidc.ErrInteractionRequired()
	case "consent_required": // the library has no constructor for it
		return &oidc.Error{ErrorType: "consent_required", Description: "The user has not allowed this client yet."}
	default:
		return oidc.ErrAccessDenied()
	}
}

// noStore marks token responses uncacheable (RFC 6749 §5.1); the library
// does not.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// serveUserinfo answers /userinfo for an active access token that carries
// the openid scope. Errors follow RFC 6750 §3: 401 with WWW-Authenticate for
// a missing or bad token, 403 for a token without openid.
func (p *Provider) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	raw, err := zop.ParseUserinfoRequest(r, p.zop.Decoder())
	if err != nil || raw == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stile"`)
		httphelper.MarshalJSONWithStatus(w, map[string]string{"error": "invalid_request", "error_description": "no access token"}, http.StatusUnauthorized)
		return
	}
	tokenID, subject, ok := p.tokenID(r, raw)
	if !ok {
		bearerError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid")
		return
	}
	t, u, err := p.storage.activeToken(ctx, tokenID, subject)
	if err != nil {
		if !errors.Is(err, errInactive) && !errors.Is(err, storage.ErrNotFound) {
			p.log.ErrorContext(ctx, "userinfo", "err", err)
		}
		bearerError(w, http.StatusUnauthorized, "invalid_token", "the access token is expired, revoked or invalid")
		return
	}
	if !t.Scopes.Contains(oidc.ScopeOpenID) {
		bearerError(w, http.StatusForbidden, "insufficient_scope", "the access token lacks the openid scope")
		return
	}
	info := new(oidc.UserInfo)
	userClaims(info, u, t.Scopes, t.UserinfoClaims)
	w.Header().Set("Cache-Control", "no-store")
	httphelper.MarshalJSON(w, info)
}

// tokenID reads the token ID and subject out of an opaque token (decrypted)
// or a JWT (signature, issuer and expiry checked against stile's keys).
func (p *Provider) tokenID(r *http.Request, raw string) (id, subject string, ok bool) {
	if plain, err := p.zop.Crypto().Decrypt(raw); err == nil {
		id, subject, found := strings.Cut(plain, ":")
		return id, subject, found && !strings.Contains(subject, ":")
	}
	claims, err := zop.VerifyAccessToken[*oidc.AccessTokenClaims](r.Context(), raw, p.zop.AccessTokenVerifier(r.Context()))
	if err != nil {
		return "", "", false
	}
	return claims.JWTID, claims.Subject, true
}

func bearerError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="stile", error=%q, error_description=%q`, code, description))
	httphelper.MarshalJSONWithStatus(w, map[string]string{"error": code, "error_description": description}, status)
}

// errorPage turns the library's plain-text 400 answers at /authorize —
// given when it must not redirect, such as for an unregistered redirect URI
// — into stile's page (errorpage.go); the library's text goes to the log.
func (p *Provider) errorPage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &capture{ResponseWriter: w}
		next.ServeHTTP(c, r)
		if c.intercepted {
			pr := p.authorizeProblem(r.Context(), r)
			p.log.InfoContext(r.Context(), "authorization request refused", "page", pr.Heading,
				"detail", strings.TrimSpace(c.body.String()), "client", r.Form.Get("client_id"), "remote", r.RemoteAddr)
			renderProblem(w, pr)
		}
	})
}

// capture holds back a plain-text (or untyped) error response so errorPage
// and notFound can replace it.
type capture struct {
	http.ResponseWriter
	status      int
	intercepted bool
	body        bytes.Buffer
}

func (c *capture) WriteHeader(status int) {
	c.status = status
	if ct := c.Header().Get("Content-Type"); status >= 400 && (ct == "" || strings.HasPrefix(ct, "text/plain")) {
		c.intercepted = true
		return
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *capture) Write(b []byte) (int, error) {
	if c.intercepted {
		return c.body.Write(b)
	}
	return c.ResponseWriter.Write(b)
}

// pageHead and pageFoot frame the few pages the provider renders itself,
// in the login pages' style.
const (
	pageHead = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>stile</title><link rel="stylesheet" href="/login/static/style.css"></head>
<body><main class="card">`
	pageFoot = `</main></body></html>
`
)

// renderPage writes a page with the headers of every stile page: a strict
// CSP, no framing, no referrer, no caching.
func renderPage(w http.ResponseWriter, status int, t *template.Template, data any) {
	h := w.Header()
	h.Del("Location")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	t.Execute(w, data)
}
