package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// Scope is the scope a client_credentials token needs to call the API
// (op.ScopeAdmin; the wiring checks it, the 403 names it).
const Scope = "stile:admin"

// Caller is the client a request acts for.
type Caller struct {
	ClientID string
}

// Errors Config.Authorize returns for a request the API must refuse.
var (
	ErrNoToken = errors.New("no active access token")                   // 401
	ErrScope   = errors.New("the access token does not carry " + Scope) // 403
)

// DefaultRate is each client's request budget: generous for a CMS that
// syncs its users, a bound for one that loops.
var DefaultRate = storage.Rate{Limit: 1200, Per: time.Minute}

// Config is what the API is built from.
type Config struct {
	Accounts *account.Service
	DB       *storage.DB
	// Authorize names the request's caller, or fails with ErrNoToken,
	// ErrScope or an internal error.
	Authorize func(*http.Request) (*Caller, error)
	Log       *slog.Logger
	Rate      storage.Rate // per client; zero: DefaultRate
}

// Handler serves /api/v1.
type Handler struct {
	accounts  *account.Service
	db        *storage.DB
	authorize func(*http.Request) (*Caller, error)
	log       *slog.Logger
	rate      storage.Rate
	router    *mux.Router // /api/v1's own, for the Allow header of a 405
}

// New makes the API's handler.
func New(c Config) *Handler {
	if c.Rate == (storage.Rate{}) {
		c.Rate = DefaultRate
	}
	return &Handler{accounts: c.Accounts, db: c.DB, authorize: c.Authorize, log: c.Log, rate: c.Rate}
}

// Mount adds /api/v1 to r. Mount it before any catch-all: every path
// under /api/v1 answers here, unknown ones with a problem.
func (h *Handler) Mount(r *mux.Router) {
	s := r.PathPrefix("/api/v1").Subrouter()
	h.router = s
	s.NotFoundHandler = http.HandlerFunc(h.notFound)
	s.MethodNotAllowedHandler = http.HandlerFunc(h.methodNotAllowed)
	s.HandleFunc("/openapi.json", serveDocument).Methods(http.MethodGet, http.MethodHead)
	h.mountUsers(s)
	h.mountFactors(s)
	s.Handle("/clients", h.api(h.listClients)).Methods(http.MethodGet)
	s.Handle("/clients/{id}", h.api(h.getClient)).Methods(http.MethodGet)
	s.Handle("/events", h.api(h.listEvents)).Methods(http.MethodGet)
}

// handlerFunc is an API handler: it answers, or returns the error that
// problem turns into the response.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *Caller) error

// api wraps an API handler in what every call goes through: the token,
// the client's rate, and the one place errors become problems.
func (h *Handler) api(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := h.authorize(r)
		if err == nil {
			err = h.limit(r.Context(), w, c)
		}
		if err == nil {
			err = fn(w, r, c)
		}
		if err != nil {
			h.problem(w, r, err)
		}
	})
}

// errLimited is a client over its rate; retryAfter says for how long.
type errLimited struct{ retryAfter time.Duration }

func (e *errLimited) Error() string { return "rate limit exceeded" }

// limit counts the call against the client's rate in the database, so
// every instance shares one budget.
func (h *Handler) limit(ctx context.Context, w http.ResponseWriter, c *Caller) error {
	ok, wait, err := h.db.Hit(ctx, "api:"+c.ClientID, h.rate)
	if err != nil {
		return err
	}
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(max(1, (wait+time.Second-1)/time.Second))))
		return &errLimited{retryAfter: wait}
	}
	return nil
}

// actor is who the audit trail records for a call.
func actor(r *http.Request, c *Caller) account.Actor {
	a := account.Actor{ClientID: c.ClientID}
	if ip := clientip.From(r.Context()); ip.IsValid() {
		a.Remote = ip.String()
	}
	return a
}
