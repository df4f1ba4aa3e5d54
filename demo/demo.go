// Package demo is the relying party that `stile serve --demo` runs beside
// the provider, so a newcomer can watch a whole sign-in. It is an ordinary
// external client: it imports nothing of stile's, discovers the issuer and
// exchanges the code over real HTTP with the OpenID library's rp package
// (PKCE, state cookie), then shows what a backend would receive.
//
//	GET /demo/login     start a sign-in (redirect to /authorize)
//	GET /demo/callback  exchange the code; show the ID token, access token and userinfo claims
package demo

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sync"

	"github.com/gorilla/mux"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Paths of the demo client.
const (
	LoginPath    = "/demo/login"
	CallbackPath = "/demo/callback"
)

// Config names the demo client registered with stile.
type Config struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	Log          *slog.Logger
}

// Handler serves the demo client's pages.
type Handler struct {
	cfg     Config
	cookies *httphelper.CookieHandler

	mu    sync.Mutex
	party rp.RelyingParty // created on first use: discovery needs the server up
}

// New returns the demo client. Its cookie keys live only in this process.
func New(cfg Config) *Handler {
	hashKey, encKey := make([]byte, 32), make([]byte, 32)
	rand.Read(hashKey)
	rand.Read(encKey)
	opts := []httphelper.CookieHandlerOpt{httphelper.WithSameSite(http.SameSiteLaxMode)}
	if len(cfg.Issuer) > 5 && cfg.Issuer[:5] == "http:" {
		opts = append(opts, httphelper.WithUnsecure())
	}
	return &Handler{cfg: cfg, cookies: httphelper.NewCookieHandler(hashKey, encKey, opts...)}
}

// Mount adds the demo routes to r.
func (h *Handler) Mount(r *mux.Router) {
	r.HandleFunc(LoginPath, h.login).Methods(http.MethodGet)
	r.HandleFunc(CallbackPath, h.callback).Methods(http.MethodGet)
}

func (h *Handler) relyingParty(r *http.Request) (rp.RelyingParty, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.party != nil {
		return h.party, nil
	}
	p, err := rp.NewRelyingPartyOIDC(r.Context(), h.cfg.Issuer, h.cfg.ClientID, h.cfg.ClientSecret,
		h.cfg.Issuer+CallbackPath, []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail},
		rp.WithPKCE(h.cookies), rp.WithCookieHandler(h.cookies))
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", h.cfg.Issuer, err)
	}
	h.party = p
	return p, nil
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	p, err := h.relyingParty(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	rp.AuthURLHandler(rand.Text, p).ServeHTTP(w, r)
}

func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	p, err := h.relyingParty(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	show := func(w http.ResponseWriter, r *http.Request, tokens *oidc.Tokens[*oidc.IDTokenClaims], _ string, party rp.RelyingParty, info *oidc.UserInfo) {
		var access map[string]any
		if _, err := oidc.ParseToken(tokens.AccessToken, &access); err != nil {
			access = map[string]any{"note": "opaque access token: a backend asks /oauth/introspect"}
		}
		h.render(w, result{
			RawAccess:   tokens.AccessToken,
			IDToken:     pretty(tokens.IDTokenClaims),
			AccessToken: pretty(access),
			Userinfo:    pretty(info),
		})
	}
	rp.CodeExchangeHandler(rp.UserinfoCallback(show), p).ServeHTTP(w, r)
}

type result struct{ RawAccess, IDToken, AccessToken, Userinfo, Error string }

func pretty(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	h.cfg.Log.Error("demo client", "err", err)
	w.WriteHeader(http.StatusBadGateway)
	h.render(w, result{Error: "The demo client could not reach the provider: " + err.Error()})
}

//go:embed page.html
var pageFS embed.FS

var page = template.Must(template.ParseFS(pageFS, "page.html"))

func (h *Handler) render(w http.ResponseWriter, res result) {
	var buf bytes.Buffer
	if err := page.Execute(&buf, res); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; frame-ancestors 'none'")
	w.Header().Set("Cache-Control", "no-store")
	buf.WriteTo(w)
}
