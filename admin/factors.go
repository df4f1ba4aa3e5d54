package admin

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/account"
)

func (h *Handler) mountFactors(s *mux.Router) {
	s.Handle("/users/{id}/sessions", h.api(h.listSessions)).Methods(http.MethodGet)
	s.Handle("/users/{id}/sessions", h.api(h.endSessions)).Methods(http.MethodDelete)
	s.Handle("/users/{id}/factors", h.api(h.factors)).Methods(http.MethodGet)
	s.Handle("/users/{id}/factors/{which}", h.api(h.resetFactor)).Methods(http.MethodDelete)
	s.Handle("/users/{id}/enrollment-link", h.api(h.enrollmentLink)).Methods(http.MethodPost)
}

func (h *Handler) listSessions(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	got, err := h.accounts.Sessions(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, got.View())
}

// endSessions ends every session of the user and revokes their tokens.
func (h *Handler) endSessions(w http.ResponseWriter, r *http.Request, c *Caller) error {
	if err := h.accounts.EndSessions(r.Context(), actor(r, c), mux.Vars(r)["id"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Factors is a user's second-factor state.
type Factors struct {
	Methods           []string `json:"methods"`
	Preferred         string   `json:"preferred"`
	TOTP              bool     `json:"totp"`
	RecoveryCodesLeft int      `json:"recovery_codes_left"`
	OTPExempt         bool     `json:"otp_exempt"`
}

func (h *Handler) factors(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	f, err := h.accounts.Factors(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, Factors{Methods: f.Methods, Preferred: f.Preferred, TOTP: f.TOTP,
		RecoveryCodesLeft: f.RecoveryCodesLeft, OTPExempt: f.OTPExempt})
}

// factorKinds are what DELETE /factors/{which} resets.
var factorKinds = []string{"totp", "recovery_codes", "all"}

// resetFactor removes a second factor; the service ends the user's
// sessions and revokes their tokens.
func (h *Handler) resetFactor(w http.ResponseWriter, r *http.Request, c *Caller) error {
	which := mux.Vars(r)["which"]
	if !slices.Contains(factorKinds, which) {
		return badField("which", "use totp, recovery_codes or all")
	}
	if err := h.accounts.ResetFactor(r.Context(), actor(r, c), mux.Vars(r)["id"], which); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type enrollmentBody struct {
	TTLSeconds int64 `json:"ttl_seconds"`
}

// enrollmentLink issues a single-use enrolment link (the body, and its
// ttl_seconds, are optional; the service's default applies).
func (h *Handler) enrollmentLink(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var b enrollmentBody
	if _, err := decodeObject(w, r, typeJSON, &b, true); err != nil {
		return err
	}
	ttl := time.Duration(b.TTLSeconds) * time.Second
	switch {
	case b.TTLSeconds < 0 || ttl > account.MaxEnrollmentLinkTTL:
		return badField("ttl_seconds", "use 1 to "+strconv.Itoa(int(account.MaxEnrollmentLinkTTL/time.Second))+" seconds, or leave it out")
	case ttl == 0:
		ttl = account.DefaultEnrollmentLinkTTL
	}
	url, exp, err := h.accounts.EnrollLink(r.Context(), actor(r, c), mux.Vars(r)["id"], ttl)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, Enrollment{URL: url, ExpiresAt: exp.UTC()})
}
