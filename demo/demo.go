// Package demo is the relying party that `stile serve --demo` runs beside
// the provider, so a newcomer can watch a whole sign-in. It is an ordinary
// external client: it imports nothing of stile's, discovers the issuer and
// exchanges the code over real HTTP with the OpenID library's rp package
// (PKCE, state cookie), then shows what a backend would receive.
//
//	GET /demo/login     start a sign-in (redirect to /authorize)
//	GET /demo/callback  exchange the code; show the ID token, access token and userinfo claims
//
// A second client signs in through the example custom login page, which
// stile's /login hands over to (the client's login_url):
//
//	GET /demo/custom-login/           the page: index.html, login.js, style.css and config.js
//	GET /demo/custom-login/start      start a sign-in as that client
//	GET /demo/custom-login/callback   exchange the code, as /demo/callback
package demo

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"

	"github.com/gorilla/mux"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Paths of the demo clients.
const (
	LoginPath          = "/demo/login"
	CallbackPath       = "/demo/callback"
	CustomLoginPath    = "/demo/custom-login/"
	CustomStartPath    = CustomLoginPath + "start"
	CustomCallbackPath = CustomLoginPath + "callback"
)

// Client is a demo client registered with stile.
type Client struct{ ID, Secret string }

// Config names the demo clients registered with stile.
type Config struct {
	Issuer string
	Client Client // signs in on stile's own pages
	// Custom, if set, signs in on CustomLogin served at CustomLoginPath
	// (the client's login_url).
	Custom      *Client
	CustomLogin fs.FS
	Log         *slog.Logger
}

// Handler serves the demo clients' pages.
type Handler struct {
	cfg     Config
	cookies *httphelper.CookieHandler

	mu      sync.Mutex
	parties map[string]rp.RelyingParty // created on first use: discovery needs the server up
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
	return &Handler{cfg: cfg, cookies: httphelper.NewCookieHandler(hashKey, encKey, opts...),
		parties: map[string]rp.RelyingParty{}}
}

// Mount adds the demo routes to r.
func (h *Handler) Mount(r *mux.Router) {
	r.HandleFunc(LoginPath, h.login(h.cfg.Client, CallbackPath)).Methods(http.MethodGet)
	r.HandleFunc(CallbackPath, h.callback(h.cfg.Client, CallbackPath)).Methods(http.MethodGet)
	if c := h.cfg.Custom; c != nil {
		r.HandleFunc(CustomStartPath, h.login(*c, CustomCallbackPath)).Methods(http.MethodGet)
		r.HandleFunc(CustomCallbackPath, h.callback(*c, CustomCallbackPath)).Methods(http.MethodGet)
		r.PathPrefix(CustomLoginPath).Handler(h.customLogin()).Methods(http.MethodGet, http.MethodHead)
	}
}

func (h *Handler) relyingParty(r *http.Request, c Client, callback string) (rp.RelyingParty, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p, ok := h.parties[c.ID]; ok {
		return p, nil
	}
	p, err := rp.NewRelyingPartyOIDC(r.Context(), h.cfg.Issuer, c.ID, c.Secret,
		h.cfg.Issuer+callback, []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail},
		rp.WithPKCE(h.cookies), rp.WithCookieHandler(h.cookies))
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", h.cfg.Issuer, err)
	}
	h.parties[c.ID] = p
	return p, nil
}

func (h *Handler) login(c Client, callback string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.relyingParty(r, c, callback)
		if err != nil {
			h.fail(w, err)
			return
		}
		rp.AuthURLHandler(rand.Text, p).ServeHTTP(w, r)
	}
}

func (h *Handler) callback(c Client, callback string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.relyingParty(r, c, callback)
		if err != nil {
			h.fail(w, err)
			return
		}
		h.exchange(w, r, p)
	}
}

// exchange answers the callback: the code for tokens, then the claims page.
func (h *Handler) exchange(w http.ResponseWriter, r *http.Request, p rp.RelyingParty) {
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

// customLogin serves the example login page with its config.js, which tells
// the page where stile is and where a sign-in starts.
func (h *Handler) customLogin() http.Handler {
	files := http.StripPrefix(CustomLoginPath, http.FileServerFS(h.cfg.CustomLogin))
	config := fmt.Appendf(nil, "window.STILE = %s\n", mustJSON(map[string]string{
		"issuer": h.cfg.Issuer, "startURL": h.cfg.Issuer + CustomStartPath}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; "+
			"img-src data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
		// The address carries the sign-in's loginToken: no referrer gives
		// it away, and no page that opened this one as a popup keeps a handle on it.
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.URL.Path == CustomLoginPath+"config.js" {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write(config)
			return
		}
		files.ServeHTTP(w, r)
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
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
