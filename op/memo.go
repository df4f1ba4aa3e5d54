package op

import (
	"context"
	"net/http"
	"sync"

	"github.com/stile-id/stile/storage"
)

// One token request asks the storage for its user up to four times: the
// refresh grant's check that the user may still sign in, the access token,
// the ID token's claims and the JWT access token's claims. A memo in the
// request's context makes that one read. It lives exactly as long as the
// request: users are never kept across requests, so a user disabled a
// moment ago is refused at their next request, on every instance.
// Clients come from the store's cache (storage/cache.go); the memo keeps
// them too, so one request sees one version of its client throughout.
type requestMemo struct {
	mu      sync.Mutex
	users   map[string]*storage.User
	clients map[string]*storage.Client
}

type memoKey struct{}

// withMemo gives a context a request memo.
func withMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &requestMemo{users: map[string]*storage.User{}, clients: map[string]*storage.Client{}})
}

// withRequestMemo gives every request through h a memo.
func withRequestMemo(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(withMemo(r.Context())))
	})
}

// user reads a user once per request: from the memo when this request read
// it already, else from the store. Only users found are remembered.
func (s *Storage) user(ctx context.Context, id string) (*storage.User, error) {
	m, _ := ctx.Value(memoKey{}).(*requestMemo)
	if m == nil {
		return s.db.GetUser(ctx, id)
	}
	m.mu.Lock()
	defer m.mu.Unlock() // held across the read: the library's calls in one request are sequential anyway
	if u, ok := m.users[id]; ok {
		return u, nil
	}
	u, err := s.db.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	m.users[id] = u
	return u, nil
}

// storedClient is user for clients.
func (s *Storage) storedClient(ctx context.Context, id string) (*storage.Client, error) {
	m, _ := ctx.Value(memoKey{}).(*requestMemo)
	if m == nil {
		return s.db.GetClient(ctx, id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.clients[id]; ok {
		return c, nil
	}
	c, err := s.db.GetClient(ctx, id)
	if err != nil {
		return nil, err
	}
	m.clients[id] = c
	return c, nil
}
