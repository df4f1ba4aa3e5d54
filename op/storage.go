package op

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage"
)

// Lifetimes are the server-wide defaults; a client may override the token
// lifetimes.
type Lifetimes struct {
	Code            time.Duration // authorization code
	AccessToken     time.Duration
	IDToken         time.Duration
	Login           time.Duration // from /authorize to the end of the login
	RefreshIdle     time.Duration // a refresh token unused this long expires
	RefreshAbsolute time.Duration // a refresh token family expires this long after the sign-in
	RefreshGrace    time.Duration // a rotated refresh token still works this long (concurrent retries); 0: never
}

// DefaultLifetimes are DESIGN.md's defaults.
var DefaultLifetimes = Lifetimes{
	Code:            60 * time.Second,
	AccessToken:     10 * time.Minute,
	IDToken:         10 * time.Minute,
	Login:           10 * time.Minute,
	RefreshIdle:     14 * 24 * time.Hour,
	RefreshAbsolute: 90 * 24 * time.Hour,
	RefreshGrace:    2 * time.Second,
}

// Storage implements the library's op.Storage over stile's store and
// signing keys. Its methods are split across files by what they serve:
// auth requests (authrequest.go), clients (client.go), tokens (token.go),
// claims (claims.go) and keys (keys.go).
type Storage struct {
	db        *storage.DB
	keys      *keys.Manager
	secretKey []byte // HMAC key for client secrets
	// refreshKey derives a rotated refresh token's successor from it.
	refreshKey []byte
	limits     Limits
	lifetimes  Lifetimes
	issuer     string
	log        *slog.Logger
	count      Counter
}

var (
	_ zop.Storage                        = (*Storage)(nil)
	_ zop.CanSetUserinfoFromRequest      = (*Storage)(nil)
	_ zop.CanGetPrivateClaimsFromRequest = (*Storage)(nil)
)

// Health reports whether the database answers; it backs readiness.
func (s *Storage) Health(ctx context.Context) error { return s.db.Ping(ctx) }

// serverError hides an internal error from clients: the library would copy
// its text into error_description. The detail goes to the log.
func (s *Storage) serverError(ctx context.Context, what string, err error) error {
	s.log.ErrorContext(ctx, what, "err", err)
	return oidc.ErrServerError().WithDescription("internal error").WithParent(err)
}

// notFound reports whether err means the thing does not exist.
func notFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }
