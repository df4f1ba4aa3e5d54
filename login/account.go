package login

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/storage"
)

// The account page lets a signed-in user see the third-party clients they
// allowed, withdraw a consent (which also revokes that client's tokens), and
// sign out of stile.
//
//	GET  /account                    consents of the session's user
//	POST /account/consents/withdraw  clientID → withdraw
//	POST /account/signout            end the session
func (h *Handler) mountAccount(r *mux.Router, csrf *http.CrossOriginProtection) {
	a := r.PathPrefix("/account").Subrouter()
	a.Use(securityHeaders)
	a.HandleFunc("", h.showAccount).Methods(http.MethodGet, http.MethodHead)
	a.Handle("/consents/withdraw", csrf.Handler(http.HandlerFunc(h.withdrawConsent))).Methods(http.MethodPost)
	a.Handle("/signout", csrf.Handler(http.HandlerFunc(h.signOut))).Methods(http.MethodPost)
}

const msgSignedOut = "You are not signed in. Sign in through an application that uses this account, then come back."

func (h *Handler) showAccount(w http.ResponseWriter, r *http.Request) {
	s := h.sessions.Current(r)
	if s == nil {
		h.render(w, http.StatusUnauthorized, "message", page{Title: "Your account", Message: msgSignedOut})
		return
	}
	u, err := h.flow.db.GetUser(r.Context(), s.UserID)
	if err != nil {
		h.fail(w, r, internal(err), page{Title: "Your account"})
		return
	}
	consents, err := h.flow.db.ListConsents(r.Context(), s.UserID)
	if err != nil {
		h.fail(w, r, internal(err), page{Title: "Your account"})
		return
	}
	h.render(w, http.StatusOK, "account", page{Title: "Your account", Username: u.Username, Consents: consents})
}

func (h *Handler) withdrawConsent(w http.ResponseWriter, r *http.Request) {
	s := h.sessions.Current(r)
	if s == nil {
		h.render(w, http.StatusUnauthorized, "message", page{Title: "Your account", Message: msgSignedOut})
		return
	}
	clientID := r.PostFormValue("clientID")
	err := h.flow.db.WithdrawConsent(r.Context(), s.UserID, clientID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.fail(w, r, internal(err), page{Title: "Your account"})
		return
	}
	h.log.Info("consent withdrawn", "user", s.UserID, "client", clientID)
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	s, err := h.sessions.EndCurrent(w, r)
	if err != nil && !errors.Is(err, ErrNoSession) {
		h.fail(w, r, internal(err), page{Title: "Sign out"})
		return
	}
	if s != nil {
		h.log.Info("signed out", "user", s.UserID, "session", s.ID)
	}
	h.render(w, http.StatusOK, "message", page{Title: "Signed out", Message: "You are signed out of stile. " +
		"To sign in again, open an application that uses this account and sign in there."})
}
