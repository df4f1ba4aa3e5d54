package account

import (
	"context"
	"fmt"

	"github.com/stile-id/stile/storage"
)

// The changes a user makes to their own second factors (the self-service
// API). The login package proves the user's factor first — that is a
// guess, counted and throttled like a sign-in — and then asks for the
// change here, where it is made, notified and audited like any other.

// Event types of self-service factor changes (README, "Audit trail").
const (
	EventTOTPAdded     = "factor.totp_added"
	EventFactorRemoved = "factor.removed"
	EventRecoveryCodes = "factor.recovery_codes"
	EventPreferred     = "factor.preferred"
)

// AdoptTOTP makes secret the user's authenticator, with step (the code
// that confirmed it) already spent, and tells the user. A sign-in that
// enrols, an enrolment link and self-service all end here.
func (s *Service) AdoptTOTP(ctx context.Context, u *storage.User, secret []byte, step int64) error {
	if err := SetTOTPSecret(ctx, s.db, s.c.Sealer, u.ID, string(secret)); err != nil {
		return err
	}
	if _, err := s.db.AcceptTOTPStep(ctx, u.ID, step); err != nil {
		return fmt.Errorf("spend the confirming step: %w", err)
	}
	s.notify(ctx, u, "An authenticator app was added", "An authenticator app was just set up as the second factor "+
		"of your account. If it was not you, contact your administrator at once.")
	return nil
}

// AddTOTP is AdoptTOTP as the user's own change.
func (s *Service) AddTOTP(ctx context.Context, a Actor, u *storage.User, secret []byte, step int64) error {
	err := s.AdoptTOTP(ctx, u, secret, step)
	s.audit(ctx, a, EventTOTPAdded, u.ID, storage.Attributes{"method": MethodTOTP}, err)
	return err
}

// RemoveTOTP removes the user's authenticator at their request; their
// sessions stay (the request proved a factor).
func (s *Service) RemoveTOTP(ctx context.Context, a Actor, u *storage.User) error {
	err := s.db.DeleteTOTP(ctx, u.ID)
	if err == nil {
		s.notify(ctx, u, "Your authenticator app was removed", "The authenticator app of your account was just removed. "+
			"If it was not you, contact your administrator at once.")
	}
	s.audit(ctx, a, EventFactorRemoved, u.ID, storage.Attributes{"method": MethodTOTP}, err)
	return err
}

// SetPreferred makes method the second factor the user is asked for first.
// The caller checks that the user has it.
func (s *Service) SetPreferred(ctx context.Context, a Actor, u *storage.User, method string) error {
	_, err := s.update(ctx, u.ID, func(u *storage.User) error { u.Preferred = method; return nil }, 0)
	if err == nil && method != u.Preferred {
		s.notify(ctx, u, "Your preferred second factor changed", "The second factor your account asks for first "+
			"is now "+method+". If it was not you, contact your administrator at once.")
	}
	s.audit(ctx, a, EventPreferred, u.ID, storage.Attributes{"method": method}, err)
	return err
}
