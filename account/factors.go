package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stile-id/stile/storage"
)

// Sessions is what a user is signed in with: browser sessions, and the
// grants (live refresh tokens) clients hold.
type Sessions struct {
	Sessions []storage.Session
	Grants   []storage.RefreshToken
}

// SessionView is how a session is shown (the API, the CLI): when and how
// the user signed in, never its cookie's digest.
type SessionView struct {
	ID         string    `json:"id"`
	AuthTime   time.Time `json:"auth_time"`
	AMR        []string  `json:"amr"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// GrantView is how a grant is shown: which client holds what, no token,
// no digest.
type GrantView struct {
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	SessionID string    `json:"session_id,omitempty"`
	AuthTime  time.Time `json:"auth_time"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SessionsView is Sessions as shown.
type SessionsView struct {
	Sessions []SessionView `json:"sessions"`
	Grants   []GrantView   `json:"grants"`
}

// View is s without anything secret, in UTC.
func (s *Sessions) View() SessionsView {
	v := SessionsView{Sessions: []SessionView{}, Grants: []GrantView{}}
	for _, x := range s.Sessions {
		v.Sessions = append(v.Sessions, SessionView{ID: x.ID, AuthTime: x.AuthTime.UTC(), AMR: orEmpty(x.AMR),
			CreatedAt: x.CreatedAt.UTC(), LastSeenAt: x.LastSeenAt.UTC(), ExpiresAt: x.ExpiresAt.UTC()})
	}
	for _, g := range s.Grants {
		v.Grants = append(v.Grants, GrantView{ClientID: g.ClientID, Scopes: orEmpty(g.Scopes), SessionID: g.SessionID.String,
			AuthTime: g.AuthTime.UTC(), CreatedAt: g.CreatedAt.UTC(), ExpiresAt: g.ExpiresAt.UTC()})
	}
	return v
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Sessions lists the user's live sessions and grants.
func (s *Service) Sessions(ctx context.Context, id string) (*Sessions, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	ss, err := s.db.ListUserSessions(ctx, id)
	if err != nil {
		return nil, err
	}
	gs, err := s.db.ListLiveRefreshTokens(ctx, id)
	if err != nil {
		return nil, err
	}
	return &Sessions{Sessions: ss, Grants: gs}, nil
}

// EndSessions ends all the user's sessions and revokes their tokens.
func (s *Service) EndSessions(ctx context.Context, a Actor, id string) error {
	u, err := s.Get(ctx, id)
	if err == nil {
		err = s.endAll(ctx, u, "", "")
	}
	s.audit(ctx, a, "user.sessions_ended", id, nil, err)
	return err
}

// The methods a user can prove the second step with.
const (
	MethodTOTP     = "TOTP"
	MethodEmail    = "EMAIL"
	MethodSMS      = "SMS"
	MethodRecovery = "RECOVERY"
)

// Factors is the state of a user's second factors.
type Factors struct {
	Methods           []string // what the user has: TOTP, EMAIL (an address on file), SMS (a number), RECOVERY (codes left)
	Preferred         string
	TOTP              bool
	RecoveryCodesLeft int
	OTPExempt         bool
}

// Factors reads the state of the user's second factors.
func (s *Service) Factors(ctx context.Context, id string) (*Factors, error) {
	u, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	f := &Factors{Methods: []string{}, Preferred: u.Preferred, OTPExempt: u.OTPExempt}
	switch _, err := s.db.GetTOTP(ctx, id); {
	case err == nil:
		f.TOTP = true
		f.Methods = append(f.Methods, MethodTOTP)
	case !errors.Is(err, storage.ErrNotFound):
		return nil, err
	}
	if u.Email != "" {
		f.Methods = append(f.Methods, MethodEmail)
	}
	if u.Phone != "" {
		f.Methods = append(f.Methods, MethodSMS)
	}
	if f.RecoveryCodesLeft, err = s.db.RecoveryCodesLeft(ctx, id); err != nil {
		return nil, err
	}
	if f.RecoveryCodesLeft > 0 {
		f.Methods = append(f.Methods, MethodRecovery)
	}
	return f, nil
}

// What ResetFactor removes.
const (
	FactorTOTP          = "totp"
	FactorRecoveryCodes = "recovery_codes"
	FactorAll           = "all"
)

// ResetFactor removes a second factor — the authenticator app, the
// recovery codes, or both and the preferred method — for a user who lost
// it, then ends their sessions and tokens and tells them.
func (s *Service) ResetFactor(ctx context.Context, a Actor, id, which string) error {
	err := s.resetFactor(ctx, id, which)
	s.audit(ctx, a, "user.factor_reset", id, storage.Attributes{"factor": which}, err)
	return err
}

func (s *Service) resetFactor(ctx context.Context, id, which string) error {
	u, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	switch which {
	case FactorTOTP:
		err = s.db.DeleteTOTP(ctx, id)
	case FactorRecoveryCodes:
		err = s.db.ReplaceRecoveryCodes(ctx, id, nil)
	case FactorAll:
		if err = s.db.DeleteTOTP(ctx, id); err == nil {
			err = s.db.ReplaceRecoveryCodes(ctx, id, nil)
		}
		if err == nil {
			u, err = s.update(ctx, id, func(u *storage.User) error { u.Preferred = ""; return nil }, 0)
		}
	default:
		return invalid("factor", "%q: use %s, %s or %s", which, FactorTOTP, FactorRecoveryCodes, FactorAll)
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("reset %s of user %s: %w", which, id, err)
	}
	return s.endAll(ctx, u, "A second factor was removed from your account",
		"An administrator removed a second factor ("+which+") from your account "+u.Username+
			" and signed out every session. If you did not ask for this, contact your administrator.")
}

// EnrollLink makes a single-use link with which the user sets up an
// authenticator app (and chooses a password, if they have none). An
// earlier link stops working.
func (s *Service) EnrollLink(ctx context.Context, a Actor, id string, ttl time.Duration) (string, time.Time, error) {
	url, exp, err := s.enrollLink(ctx, id, ttl)
	s.audit(ctx, a, "user.enrollment_link", id, storage.Attributes{"expires_at": exp}, err)
	return url, exp, err
}

func (s *Service) enrollLink(ctx context.Context, id string, ttl time.Duration) (string, time.Time, error) {
	if ttl <= 0 || ttl > MaxEnrollmentLinkTTL {
		return "", time.Time{}, invalid("ttl", "a link lives more than zero and at most 7 days, not %s", ttl)
	}
	u, err := s.Get(ctx, id)
	if err != nil {
		return "", time.Time{}, err
	}
	// A disabled account could only fail in the user's hands.
	if u.Disabled {
		return "", time.Time{}, &FieldError{Field: "user", Reason: "the user is disabled: enable them first", Kind: ErrConflict}
	}
	return NewEnrollmentLink(ctx, s.db, s.c.Issuer, id, ttl, s.now())
}

// EnrollTOTP gives the user a new authenticator secret, replacing any
// earlier one, and returns it to be shown once: for operators, who hand
// it over on a channel they trust.
func (s *Service) EnrollTOTP(ctx context.Context, a Actor, id string) (*Enrollment, error) {
	u, err := s.Get(ctx, id)
	var e *Enrollment
	if err == nil {
		e, err = EnrollTOTP(ctx, s.db, s.c.Sealer, s.c.IssuerLabel, u)
	}
	s.audit(ctx, a, "user.totp_enrolled", id, nil, err)
	return e, err
}

// RecoveryCodes gives the user ten new recovery codes, voiding the old
// ones, tells them, and returns the codes to be shown once.
func (s *Service) RecoveryCodes(ctx context.Context, a Actor, id string) ([]string, error) {
	u, err := s.Get(ctx, id)
	var codes []string
	if err == nil {
		codes, err = NewRecoveryCodes(ctx, s.db, s.c.RecoveryKey, id)
	}
	if err == nil {
		s.notify(ctx, u, "New recovery codes", "New recovery codes were made for your account; "+
			"the old ones no longer work. If it was not you, contact your administrator at once.")
	}
	s.audit(ctx, a, EventRecoveryCodes, id, nil, err)
	return codes, err
}
