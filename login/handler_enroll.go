package login

import (
	"encoding/base64"
	"html/template"
	"net/http"

	"github.com/gorilla/mux"
)

// The enrolment pages, for a link from `stile user enroll-link`:
//
//	GET  /enroll?token=…  the password form (a user without a password: choose one, typed twice)
//	POST /enroll          password (or password + confirm) → the new secret, as a QR code and as text, and a code form
//	POST /enroll/confirm  the first code → enrolled
func (h *Handler) mountEnrollment(r *mux.Router, csrf *http.CrossOriginProtection) {
	e := r.PathPrefix(EnrollPath).Subrouter()
	e.Use(securityHeaders)
	e.HandleFunc("", h.showEnroll).Methods(http.MethodGet, http.MethodHead)
	e.Handle("", csrf.Handler(http.HandlerFunc(h.submitEnroll))).Methods(http.MethodPost)
	e.Handle("/confirm", csrf.Handler(http.HandlerFunc(h.confirmEnroll))).Methods(http.MethodPost)
}

func (h *Handler) showEnroll(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	form, err := h.flow.EnrollUser(r.Context(), token, h.binder.Ensure(w, r))
	if err != nil {
		h.fail(w, r, err, page{Title: "Set up your authenticator"})
		return
	}
	p := page{Title: "Set up your authenticator", Token: token}
	p.enrollForm(form)
	h.render(w, http.StatusOK, "enroll", p)
}

func (p *page) enrollForm(f *EnrollForm) {
	if f != nil {
		p.Username, p.Choose, p.Chosen = f.Username, f.Choose, f.Chosen
	}
}

func (h *Handler) submitEnroll(w http.ResponseWriter, r *http.Request) {
	token := r.PostFormValue("token")
	binding, _ := h.binder.Get(r)
	p := page{Title: "Set up your authenticator", Token: token}
	in := NewPassword{Password: r.PostFormValue("password"), Confirm: r.PostFormValue("confirm")}
	e, err := h.flow.EnrollStart(r.Context(), token, binding, in, r.RemoteAddr, h.flow.issuerLabel)
	if err != nil {
		form, _ := h.flow.EnrollUser(r.Context(), token, binding)
		p.enrollForm(form)
		h.failEnroll(w, r, err, "enroll", p)
		return
	}
	h.renderSecret(w, http.StatusOK, p, e)
}

func (h *Handler) renderSecret(w http.ResponseWriter, status int, p page, e *Enrolling) {
	p.Username, p.Secret, p.URL, p.FormAction = e.Username, e.Secret, e.URL, "/enroll/confirm"
	p.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QR))
	h.render(w, status, "enroll_secret", p)
}

func (h *Handler) confirmEnroll(w http.ResponseWriter, r *http.Request) {
	token := r.PostFormValue("token")
	binding, _ := h.binder.Get(r)
	err := h.flow.EnrollConfirm(r.Context(), token, binding, r.PostFormValue("otp"))
	if err != nil {
		p := page{Title: "Set up your authenticator", Token: token}
		if e := AsError(err); e.Code == CodeInvalidOTP || e.Code == CodeThrottled {
			// Show the same secret again beside the error: it is still this browser's.
			if again, perr := h.flow.pendingSecret(r.Context(), token, binding); perr == nil {
				e.setRetryAfter(w)
				p.Error = e.Message
				h.renderSecret(w, e.Status(), p, again)
				return
			}
		}
		h.failEnroll(w, r, err, "message", p)
		return
	}
	h.render(w, http.StatusOK, "message", page{Title: "You are set up",
		Message: "Your authenticator app is ready. Sign in to your application with your password and a code from the app."})
}

// failEnroll shows a failed enrolment step: on its form if the user can
// fix it, otherwise on a message page.
func (h *Handler) failEnroll(w http.ResponseWriter, r *http.Request, err error, form string, p page) {
	e := AsError(err)
	if e.Code == CodeServerError {
		h.log.ErrorContext(r.Context(), "enrolment page", "path", r.URL.Path, "err", err)
	}
	e.setRetryAfter(w)
	p.Error = e.Message
	switch e.Code {
	case CodeInvalidCredentials, CodeThrottled, CodeInvalidRequest, CodeBusy:
	default:
		form = "message"
	}
	if form != "message" {
		h.render(w, e.Status(), form, p)
		return
	}
	h.render(w, e.Status(), "message", page{Title: "Set up your authenticator", Error: e.Message})
}
