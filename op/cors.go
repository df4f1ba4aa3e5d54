package op

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/rs/cors"

	"github.com/stile-id/stile/storage"
)

// corsPolicy decides which browser origins may call the protocol endpoints.
// Discovery and the JWKS are public documents: any origin. Everything else
// (token, userinfo, introspection, revocation) answers only origins some
// client registered as a web origin. Credentials are never allowed
// cross-origin; the library's default would reflect any origin with them.
type corsPolicy struct {
	db *storage.DB

	mu       sync.Mutex
	origins  map[string]bool
	loadedAt time.Time
	gen      uint64 // the store's cache generation when loaded: a client change reloads (storage/cache.go)
}

// corsCacheFor bounds how long a newly registered origin waits to be seen.
const corsCacheFor = 30 * time.Second

func newCORS(db *storage.DB) *corsPolicy { return &corsPolicy{db: db} }

func (p *corsPolicy) options() *cors.Options {
	return &cors.Options{
		AllowOriginVaryRequestFunc: p.allow,
		AllowedMethods:             []string{http.MethodGet, http.MethodHead, http.MethodPost},
		AllowedHeaders:             []string{"Authorization", "Content-Type", "Accept", "Accept-Language"},
		AllowCredentials:           false,
		MaxAge:                     600,
	}
}

func (p *corsPolicy) allow(r *http.Request, origin string) (bool, []string) {
	switch r.URL.Path {
	case "/.well-known/openid-configuration", "/keys":
		return true, nil
	}
	return p.registered(r.Context(), origin), nil
}

func (p *corsPolicy) registered(ctx context.Context, origin string) bool {
	gen := p.db.Generation(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.origins == nil || time.Since(p.loadedAt) > corsCacheFor || gen != p.gen {
		clients, err := p.db.ListClients(ctx)
		if err != nil {
			return p.origins[origin] // keep the last known set through a database hiccup
		}
		p.origins = map[string]bool{}
		for _, c := range clients {
			for _, o := range c.WebOrigins {
				p.origins[o] = true
			}
		}
		p.loadedAt, p.gen = time.Now(), gen
	}
	return p.origins[origin]
}
