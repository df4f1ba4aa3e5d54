package login

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/storage"
)

// The forgot-password pages (forgot.go, reset.go), under /login:
//
//	GET  /login/forgot?authRequestID=…  the form: username or email address
//	POST /login/forgot                   identifier → always the same page: "If an account matches, we sent a link…"
//	GET  /login/reset?token=…            the emailed link: bound to this browser; the second-factor form
//	POST /login/reset                    otp → the new-password form
//	POST /login/reset/resend             a new texted code
//	POST /login/reset/password           password + confirm → done: every session ended, the user told
func (h *Handler) mountForgot(s *mux.Router, csrf *http.CrossOriginProtection) {
	s.HandleFunc("/forgot", h.showForgot).Methods(http.MethodGet, http.MethodHead)
	s.Handle("/forgot", csrf.Handler(http.HandlerFunc(h.submitForgot))).Methods(http.MethodPost)
	s.HandleFunc("/reset", h.showReset).Methods(http.MethodGet, http.MethodHead)
	s.Handle("/reset", csrf.Handler(http.HandlerFunc(h.submitResetCode))).Methods(http.MethodPost)
	s.Handle("/reset/resend", csrf.Handler(http.HandlerFunc(h.resendResetCode))).Methods(http.MethodPost)
	s.Handle("/reset/password", csrf.Handler(http.HandlerFunc(h.submitResetPassword))).Methods(http.MethodPost)
}

const (
	titleForgot = "Forgot your password?"
	titleReset  = "Reset your password"
)

func (h *Handler) showForgot(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	h.render(w, http.StatusOK, "forgot", page{Title: titleForgot, ClientName: h.flow.ClientName(r.Context(), id), AuthRequestID: id})
}

// submitForgot answers every accepted request with the same page, whether
// or not an account matched.
func (h *Handler) submitForgot(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("authRequestID")
	binding, _ := h.binder.Get(r)
	p := page{Title: titleForgot, ClientName: h.flow.ClientName(r.Context(), id), AuthRequestID: id}
	msg, err := h.flow.Forgot(r.Context(), ForgotRequest{AuthRequestID: id, Binding: binding, Door: storage.DoorPages,
		Identifier: r.PostFormValue("identifier")})
	if err != nil {
		e := AsError(err)
		if e.Code == CodeServerError {
			h.log.ErrorContext(r.Context(), "forgot password page", "err", err)
		}
		e.setRetryAfter(w)
		p.Error = e.Message
		h.render(w, e.Status(), "forgot", p)
		return
	}
	p.Title, p.Message = "Check your email", msg
	h.render(w, http.StatusOK, "message", p)
}

func (h *Handler) showReset(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	step, err := h.flow.OpenReset(r.Context(), token, h.binder.Ensure(w, r))
	if err != nil {
		h.failReset(w, r, err, page{Title: titleReset, Token: token}, nil)
		return
	}
	h.renderReset(w, http.StatusOK, page{Title: titleReset, Token: token}, step)
}

func (h *Handler) renderReset(w http.ResponseWriter, status int, p page, step *ResetStep) {
	if step.Proven {
		p.Choose, p.Message = true, "Choose a new password: at least 8 characters, not one of the common passwords attackers try first."
	} else {
		p.Message, p.Resend = step.Message, step.Resend
	}
	h.render(w, status, "reset", p)
}

func (h *Handler) submitResetCode(w http.ResponseWriter, r *http.Request) {
	token := r.PostFormValue("token")
	binding, _ := h.binder.Get(r)
	p := page{Title: titleReset, Token: token}
	if err := h.flow.ResetVerify(r.Context(), token, binding, r.PostFormValue("otp")); err != nil {
		h.failReset(w, r, err, p, func() (*ResetStep, error) { return h.flow.OpenReset(r.Context(), token, binding) })
		return
	}
	h.renderReset(w, http.StatusOK, p, &ResetStep{Proven: true})
}

func (h *Handler) resendResetCode(w http.ResponseWriter, r *http.Request) {
	token := r.PostFormValue("token")
	binding, _ := h.binder.Get(r)
	p := page{Title: titleReset, Token: token}
	step, err := h.flow.ResendResetCode(r.Context(), token, binding)
	if err != nil {
		h.failReset(w, r, err, p, func() (*ResetStep, error) { return h.flow.OpenReset(r.Context(), token, binding) })
		return
	}
	h.renderReset(w, http.StatusOK, p, step)
}

func (h *Handler) submitResetPassword(w http.ResponseWriter, r *http.Request) {
	token := r.PostFormValue("token")
	binding, _ := h.binder.Get(r)
	p := page{Title: titleReset, Token: token}
	arID, err := h.flow.ResetPassword(r.Context(), token, binding,
		NewPassword{Password: r.PostFormValue("password"), Confirm: r.PostFormValue("confirm")})
	if err != nil {
		h.failReset(w, r, err, p, func() (*ResetStep, error) { return h.flow.OpenReset(r.Context(), token, binding) })
		return
	}
	h.render(w, http.StatusOK, "message", page{Title: "Your password was changed", AuthRequestID: arID,
		Message: "Your new password is set, and every session of your account was signed out. Sign in with your new password."})
}

// failReset shows a failed step on the link: on its form again (step
// says which) if the user can fix it there, otherwise on a message page
// with the way back to the forgot form.
func (h *Handler) failReset(w http.ResponseWriter, r *http.Request, err error, p page, step func() (*ResetStep, error)) {
	e := AsError(err)
	if e.Code == CodeServerError {
		h.log.ErrorContext(r.Context(), "password reset page", "err", err)
	}
	e.setRetryAfter(w)
	p.Error = e.Message
	switch e.Code {
	case CodeInvalidOTP, CodeInvalidRequest, CodeThrottled, CodeBusy:
		if step != nil {
			if s, serr := step(); serr == nil {
				h.renderReset(w, e.Status(), p, s)
				return
			}
		}
	}
	h.render(w, e.Status(), "reset", page{Title: titleReset, Error: e.Message, URL: "/login/forgot"})
}

// apiForgot is forgot password on the JSON API, for a client's own login
// page: POST /login/api/password/forgot {authRequestID, loginToken,
// identifier} → {status, message}, the same for every identifier. The
// emailed link leads to stile's own reset page (ResetPath), where the
// link is bound to the browser that opens it.
func (h *Handler) apiForgot(w http.ResponseWriter, r *http.Request) {
	var in struct{ AuthRequestID, LoginToken, Identifier string }
	if !h.decodeJSON(w, r, &in) {
		return
	}
	ar, err := h.flow.db.GetAuthRequest(r.Context(), in.AuthRequestID)
	if err == nil && !h.originAllowed(r, ar.ClientID) {
		h.apiError(w, r, errOrigin)
		return
	}
	msg, err := h.flow.Forgot(r.Context(), ForgotRequest{AuthRequestID: in.AuthRequestID, Binding: []byte(in.LoginToken),
		Door: storage.DoorAPI, Identifier: in.Identifier})
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiResponse{Status: "SUCCESS", Message: msg})
}
