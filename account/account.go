// Package account holds the operations on users and their second factors
// that every front door shares — the CLI, the management API and
// self-service: it validates, changes, ends what must not survive a
// change, notifies the user and writes the audit trail. Nothing about
// users is implemented twice.
package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/stile-id/stile/storage"
)

// Actor is who performs an operation; audit events record it.
type Actor struct {
	UserID   string // a signed-in user (self-service)
	ClientID string // a client: the management API's client_credentials token
	Operator string // an operator at the CLI: "cli:<os user>"
	Remote   string // the caller's address
}

// Hasher hashes new passwords: login.Pool in the server (bounded), an
// Argon2id in the CLI.
type Hasher interface {
	Hash(password string) (string, error)
}

// Config wires a Service.
type Config struct {
	DB          *storage.DB
	Hasher      Hasher
	Sealer      Sealer // seals TOTP secrets
	RecoveryKey []byte // the MAC key of recovery codes
	Issuer      string // the server's URL: enrolment links are built on it
	IssuerLabel string // the name authenticator apps show
	// Notify tells a user about a change to their account (by email, when
	// one is on file); nil sends nothing.
	Notify func(ctx context.Context, u *storage.User, subject, text string)
	Log    *slog.Logger
}

// Service performs account operations.
type Service struct {
	c   Config
	db  *storage.DB
	log *slog.Logger
}

// New returns a Service.
func New(c Config) *Service {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{c: c, db: c.DB, log: c.Log}
}

// The kinds of refusal. Every error a caller can correct wraps one of them;
// a *FieldError also names the field.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
	ErrStale    = errors.New("version mismatch")
)

// FieldError is a refusal about one field of the input.
type FieldError struct {
	Field  string // the input's name for it: "email", "attributes"…
	Reason string
	Kind   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }
func (e *FieldError) Unwrap() error { return e.Kind }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Kind: ErrInvalid}
}

// storeError turns the store's refusals into the service's kinds: a
// unique key taken is a conflict on its field, a value the store rejects
// is invalid (the store's text says which field), a missing row not found.
func storeError(err error) error {
	var fe *FieldError
	switch {
	case err == nil, errors.As(err, &fe), errors.Is(err, ErrStale):
		return err
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("%w: no such user", ErrNotFound)
	case errors.Is(err, storage.ErrConflict):
		f := storage.ConflictField(err)
		return &FieldError{Field: f, Reason: "another account has this " + f, Kind: ErrConflict}
	case errors.Is(err, storage.ErrInvalid):
		return &FieldError{Field: invalidField(err), Reason: storage.InvalidReason(err), Kind: ErrInvalid}
	}
	return err
}

// invalidField guesses the field of a store validation error from its
// text, which always starts with the field's name.
func invalidField(err error) string {
	reason := storage.InvalidReason(err)
	for _, f := range []string{"username", "email", "phone", "preferred method", "empty role", "attributes"} {
		if len(reason) >= len(f) && reason[:len(f)] == f {
			switch f {
			case "preferred method":
				return "preferred_method"
			case "empty role":
				return "roles"
			}
			return f
		}
	}
	return "user"
}

// Record appends an event to the audit trail as done by a. The trail must
// not stop the operation it describes: a failure to record is logged.
func (s *Service) Record(ctx context.Context, a Actor, e *storage.Event) {
	e.ActorUser, e.ActorClient, e.Actor, e.Remote = a.UserID, a.ClientID, a.Operator, a.Remote
	if err := s.db.RecordEvent(ctx, e); err != nil {
		s.log.Error("audit event not recorded", "type", e.Type, "user", e.UserID, "err", err)
	}
}

// audit records the outcome of an operation on user id: success, or the
// failure with err's kind as the reason.
func (s *Service) audit(ctx context.Context, a Actor, typ, id string, detail storage.Attributes, err error) {
	e := &storage.Event{Type: typ, UserID: id, Detail: detail}
	if err != nil {
		e.Outcome, e.Reason = storage.Failure, reason(err)
	}
	s.Record(ctx, a, e)
}

// reason is the stable code of an error in the trail.
func reason(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrStale):
		return "stale"
	}
	return "error"
}

func (s *Service) notify(ctx context.Context, u *storage.User, subject, text string) {
	if s.c.Notify != nil {
		s.c.Notify(ctx, u, subject, text)
	}
}

func (s *Service) now() time.Time { return s.db.Now() }
