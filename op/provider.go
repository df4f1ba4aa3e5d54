package op

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"
	"github.com/rs/cors"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage"
)

// Config is what the provider needs.
type Config struct {
	Issuer    string // scheme://host[:port], no path, no trailing slash
	DB        *storage.DB
	Keys      *keys.Manager
	Master    *keys.Master // sub-keys for token encryption and client secrets
	Lifetimes Lifetimes
	Log       *slog.Logger

	// CheckBrowser reports whether r comes from the browser the
	// authorization request is bound to; the callback refuses otherwise.
	CheckBrowser func(r *http.Request, authRequestID string) error
	// Sessions ends SSO sessions at logout.
	Sessions SessionEnder
	// Limits per source address; nil: DefaultLimits.
	Limits *Limits
	// Counter counts issued tokens and refusals, for metrics; nil: none.
	Counter Counter
	// Admission bounds the token path's requests at once; zero: DefaultAdmission.
	Admission Admission
}

// Provider is stile's OpenID provider: the library's provider over stile's
// storage, with stile's own discovery, userinfo, callback and headers
// around it.
type Provider struct {
	zop          *zop.Provider
	storage      *Storage
	db           *storage.DB
	issuer       string
	discovery    *discoveryDoc
	cors         *cors.Cors
	log          *slog.Logger
	checkBrowser func(r *http.Request, authRequestID string) error
	sessions     SessionEnder
	csrf         *http.CrossOriginProtection
	count        Counter
	leases       *tokenLeases // the token endpoints' per-address limit (lease.go)
	admit        *admission   // the token path's requests at once (admit.go)
}

// SecretKey is the HMAC key client secrets are digested with.
func SecretKey(m *keys.Master) []byte { return m.Derive("client-secret") }

// New builds the provider.
func New(c Config) (*Provider, error) {
	if err := checkIssuer(c.Issuer); err != nil {
		return nil, err
	}
	if c.CheckBrowser == nil || c.Sessions == nil {
		return nil, errors.New("provider: CheckBrowser and Sessions are required")
	}
	limits := DefaultLimits
	if c.Limits != nil {
		limits = *c.Limits
	}
	if c.Counter == nil {
		c.Counter = noCounter{}
	}
	st := &Storage{db: c.DB, keys: c.Keys, secretKey: SecretKey(c.Master), refreshKey: c.Master.Derive("refresh-successor"),
		lifetimes: c.Lifetimes, issuer: c.Issuer, log: c.Log, limits: limits, count: c.Counter}
	var cryptoKey [32]byte
	copy(cryptoKey[:], c.Master.Derive("op-crypto"))
	corsPolicy := newCORS(c.DB)
	opts := []zop.Option{
		// Only authenticated encryption for opaque tokens and codes: the
		// default also accepts the legacy unauthenticated AES-CFB.
		zop.WithCrypto(zop.NewAES256GCMCrypto(cryptoKey, "k1")),
		zop.WithCORSOptions(corsPolicy.options()),
		// The library verifies its own tokens (id_token_hint, JWT access
		// tokens) with RS256, ES256 and PS256 only unless told: EdDSA too.
		zop.WithIDTokenHintVerifierOpts(zop.WithSupportedIDTokenHintSigningAlgorithms(storage.SigningAlgorithms...)),
		zop.WithAccessTokenVerifierOpts(zop.WithSupportedAccessTokenSigningAlgorithms(storage.SigningAlgorithms...)),
	}
	if strings.HasPrefix(c.Issuer, "http://") {
		opts = append(opts, zop.WithAllowInsecure())
	}
	config := &zop.Config{
		CryptoKey:                cryptoKey,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		DefaultLogoutRedirectURI: c.Issuer + SignedOutPath,
		SupportedScopes:          scopesSupported,
		SupportedClaims:          claimsSupported,
	}
	zp, err := zop.NewProvider(config, st, zop.StaticIssuer(c.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("create provider: %w", err)
	}
	doc := &discoveryDoc{issuer: c.Issuer, algs: c.Keys.Algorithms}
	return &Provider{zop: zp, storage: st, db: c.DB, issuer: c.Issuer, discovery: doc,
		cors: cors.New(*corsPolicy.options()), log: c.Log, checkBrowser: c.CheckBrowser, sessions: c.Sessions,
		csrf: http.NewCrossOriginProtection(), count: c.Counter, leases: newTokenLeases(c.DB),
		admit: newAdmission(c.Admission, c.Counter)}, nil
}

func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("issuer %q: must be an absolute http(s) URL", issuer)
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("issuer %q: must be scheme://host[:port], without a path or trailing slash", issuer)
	}
	return nil
}

// Storage returns the provider's op.Storage.
func (p *Provider) Storage() *Storage { return p.storage }

// CallbackURL is where a finished login sends the browser.
func (p *Provider) CallbackURL(authRequestID string) string {
	return p.issuer + "/authorize/callback?id=" + url.QueryEscape(authRequestID)
}

// Mount adds the provider's routes to r. stile's own handlers come first;
// everything else goes to the library's router.
//
//	/.well-known/openid-configuration  stile's precomputed discovery
//	/authorize                          library; size caps and a per-address limit first (throttle.go); HTML error page when it cannot redirect
//	/authorize/callback                 browser binding checked, answered once, then library
//	/oauth/token                        library, with Cache-Control: no-store, limited per address, admitted a few at a time (admit.go)
//	/userinfo                           stile's, with RFC 6750 errors
//	/end_session                        stile's: ends the SSO session and its tokens
//	/signed-out                         where a logout without a redirect ends
//	/oauth/introspect, /revoke          library, with Cache-Control: no-store, limited per address
//	/keys                               stile's: the JWKS, marshalled once per key set
func (p *Provider) Mount(r *mux.Router) {
	issuer := zop.NewIssuerInterceptor(p.zop.IssuerFromRequest) // the library's verifiers read the issuer from the context
	r.Handle("/.well-known/openid-configuration", p.cors.Handler(http.HandlerFunc(p.serveDiscovery)))
	toLogin := func(loc string) bool { return strings.HasPrefix(loc, p.issuer+"/login?") }
	never := func(string) bool { return false }
	r.Handle("/authorize", onlyMethods(withIss(p.issuer, toLogin, p.errorPage(withExtras(p.zop))), http.MethodGet, http.MethodHead, http.MethodPost))
	r.Handle("/authorize/callback", onlyMethods(withIss(p.issuer, never, p.callback(p.zop)), http.MethodGet, http.MethodHead))
	admit := p.admit.handler
	lib := oauthErrors(p.log, p.zop) // RFC 6749 JSON in stile's words (oautherrors.go)
	r.Handle("/oauth/token", p.limitTokens(p.countTokens(noStore(noAssertion(onlyGrants(withSigningPins(withRequestMemo(admit(lib)))))))))
	r.Handle("/oauth/introspect", p.limitTokens(noStore(noAssertion(withRequestMemo(admit(lib))))))
	r.Handle("/revoke", p.limitTokens(noStore(noAssertion(withRequestMemo(admit(lib))))))
	r.Handle("/end_session", onlyMethods(issuer.HandlerFunc(p.serveEndSession), http.MethodGet, http.MethodHead, http.MethodPost))
	r.Handle(SignedOutPath, onlyMethods(http.HandlerFunc(p.serveSignedOut), http.MethodGet, http.MethodHead))
	r.Handle("/userinfo", p.cors.Handler(issuer.Handler(withRequestMemo(admit(http.HandlerFunc(p.serveUserinfo))))))
	r.Handle("/keys", p.cors.Handler(http.HandlerFunc(p.serveKeys)))
	r.PathPrefix("/").Handler(notFoundPages(p.zop)) // stile's 404 and 405 (errorpage.go)
}
