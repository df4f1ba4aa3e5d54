// Package demo is the relying party that `stile serve --demo` runs beside
// the provider, so a newcomer can watch a whole sign-in. It is an ordinary
// external client: it imports nothing of stile's, discovers the issuer and
// exchanges the code over real HTTP with the OpenID library's rp package
// (PKCE, state cookie), then shows what a backend would receive.
//
//	GET /demo/login     start a sign-in (redirect to /authorize)
//	GET /demo/callback  exchange the code; show the ID token, access token and userinfo claims,
//	                    and the access token ready to paste into a shell for the README's examples
//	GET /demo/static/   the page's stylesheet (fits a phone) and its copy button's script
//
// Every error is a page in the demo's own words with a way to sign in
// again; a reload of the callback shows the same result again (results.go).
//
// A second client signs in through the example custom login page, which
// stile's /login hands over to (the client's login_url):
//
//	GET /demo/custom-login/           the page: index.html, login.js, style.css and config.js
//	GET /demo/custom-login/start      start a sign-in as that client
//	GET /demo/custom-login/callback   exchange the code, as /demo/callback
package demo

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

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
	// Backend is the client ID of the backend in the access tokens'
	// audience, named in the page's examples.
	Backend string
	Log     *slog.Logger
	Now     func() time.Time // nil: time.Now
}

// Handler serves the demo clients' pages.
type Handler struct {
	cfg     Config
	cookies *httphelper.CookieHandler
	results *results

	mu      sync.Mutex
	parties map[string]rp.RelyingParty // created on first use: discovery needs the server up
}

// New returns the demo client. Its cookie keys live only in this process.
func New(cfg Config) *Handler {
	hashKey, encKey := make([]byte, 32), make([]byte, 32)
	rand.Read(hashKey)
	rand.Read(encKey)
	opts := []httphelper.CookieHandlerOpt{httphelper.WithSameSite(http.SameSiteLaxMode)}
	secure := !strings.HasPrefix(cfg.Issuer, "http:")
	if !secure {
		opts = append(opts, httphelper.WithUnsecure())
	}
	return &Handler{cfg: cfg, cookies: httphelper.NewCookieHandler(hashKey, encKey, opts...),
		results: newResults(cfg.Now, secure), parties: map[string]rp.RelyingParty{}}
}

// Mount adds the demo routes to r.
func (h *Handler) Mount(r *mux.Router) {
	r.HandleFunc(LoginPath, h.login(h.cfg.Client, CallbackPath, LoginPath)).Methods(http.MethodGet)
	r.HandleFunc(CallbackPath, h.callback(h.cfg.Client, CallbackPath, LoginPath)).Methods(http.MethodGet)
	r.PathPrefix(staticPath).Handler(http.StripPrefix(staticPath, http.FileServerFS(staticFiles))).Methods(http.MethodGet, http.MethodHead)
	if c := h.cfg.Custom; c != nil {
		r.HandleFunc(CustomStartPath, h.login(*c, CustomCallbackPath, CustomStartPath)).Methods(http.MethodGet)
		r.HandleFunc(CustomCallbackPath, h.callback(*c, CustomCallbackPath, CustomStartPath)).Methods(http.MethodGet)
		r.PathPrefix(CustomLoginPath).Handler(h.customLogin()).Methods(http.MethodGet, http.MethodHead)
	}
}

// relyingParty is the demo client c, whose sign-ins start at start: its
// errors become the demo's own pages (callback.go).
func (h *Handler) relyingParty(r *http.Request, c Client, callback, start string) (rp.RelyingParty, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p, ok := h.parties[c.ID]; ok {
		return p, nil
	}
	p, err := rp.NewRelyingPartyOIDC(r.Context(), h.cfg.Issuer, c.ID, c.Secret,
		h.cfg.Issuer+callback, []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail},
		rp.WithPKCE(h.cookies), rp.WithCookieHandler(h.cookies),
		rp.WithUnauthorizedHandler(h.unauthorized(start)), rp.WithErrorHandler(h.refused(start)))
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", h.cfg.Issuer, err)
	}
	h.parties[c.ID] = p
	return p, nil
}

func (h *Handler) login(c Client, callback, start string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.relyingParty(r, c, callback, start)
		if err != nil {
			h.fail(w, http.StatusBadGateway, unreachable(h.cfg.Issuer), start, "discovery", err)
			return
		}
		rp.AuthURLHandler(rand.Text, p).ServeHTTP(w, r)
	}
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
