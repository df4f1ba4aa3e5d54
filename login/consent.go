package login

import (
	"context"
	"errors"
	"slices"

	"github.com/stile-id/stile/storage"
)

// needsConsent reports whether the user must be asked before the client
// gets what it requested. A first-party client never asks (unless
// prompt=consent); a third-party client asks until the user has allowed
// every requested scope — offline_access included, so refresh tokens for a
// third party always rest on consent (OpenID Connect Core §11).
func (f *Flow) needsConsent(ctx context.Context, ar *storage.AuthRequest, userID string) (bool, error) {
	if ar.Prompt.Contains("consent") {
		return true, nil
	}
	c, err := f.db.GetClient(ctx, ar.ClientID)
	if err != nil {
		return false, internal(err)
	}
	if c.FirstParty {
		return false, nil
	}
	consent, err := f.db.GetConsent(ctx, userID, ar.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, internal(err)
	}
	return !consent.Covers(ar.Scopes), nil
}

// ConsentRequest is what the consent page shows.
type ConsentRequest struct {
	ClientName string
	Scopes     []string
}

// openConsent loads a request waiting for the session user's consent.
func (f *Flow) openConsent(ctx context.Context, authRequestID string, binding []byte, s *storage.Session) (*storage.AuthRequest, error) {
	ar, err := f.openAuthRequest(ctx, authRequestID, binding, storage.DoorPages)
	if err != nil {
		return nil, err
	}
	if s == nil {
		e := fail(CodeExpired, "Your session has ended. Sign in again.")
		e.Restart = true
		return nil, e
	}
	return ar, nil
}

// ConsentInfo describes what the client asks of the user.
func (f *Flow) ConsentInfo(ctx context.Context, authRequestID string, binding []byte, s *storage.Session) (*ConsentRequest, error) {
	ar, err := f.openConsent(ctx, authRequestID, binding, s)
	if err != nil {
		return nil, err
	}
	return &ConsentRequest{ClientName: f.ClientName(ctx, ar.ID), Scopes: ar.Scopes}, nil
}

// Consent records the user's decision. Allowed, the scopes are remembered
// for the client (with any allowed before) and the request is answered;
// denied, the client gets access_denied.
func (f *Flow) Consent(ctx context.Context, authRequestID string, binding []byte, s *storage.Session, allow bool) (*Next, error) {
	ar, err := f.openConsent(ctx, authRequestID, binding, s)
	if err != nil {
		return nil, err
	}
	if !allow {
		f.log.Info("consent denied", "user", s.UserID, "client", ar.ClientID)
		return f.end(ctx, ar, "access_denied")
	}
	scopes := slices.Clone([]string(ar.Scopes))
	if old, err := f.db.GetConsent(ctx, s.UserID, ar.ClientID); err == nil {
		for _, sc := range old.Scopes {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	if err := f.db.SaveConsent(ctx, s.UserID, ar.ClientID, scopes); err != nil {
		return nil, internal(err)
	}
	f.log.Info("consent given", "user", s.UserID, "client", ar.ClientID, "scopes", scopes)
	return f.answer(ctx, ar, s)
}
