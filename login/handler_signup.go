package login

import (
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/storage"
)

// The sign-up pages (login/signup.go), for a client with sign-up on; for
// any other the routes answer 404:
//
//	GET  /login/signup?authRequestID=…  the form: username, email, password twice
//	POST /login/signup                   → a code to the address; 303 to the step page
//	GET  /login/signup/step?signupID=…   the current step: the code, another username, or the new authenticator
//	POST /login/signup/code              the emailed code → 303 to the step page, or the account and a session
//	POST /login/signup/resend            a new code
//	POST /login/signup/username          another username, when the one chosen was taken
//	POST /login/signup/totp              the new authenticator's first code → the account and a session
func (h *Handler) mountSignup(s *mux.Router, csrf *http.CrossOriginProtection) {
	s.HandleFunc("/signup", h.showSignup).Methods(http.MethodGet, http.MethodHead)
	s.Handle("/signup", csrf.Handler(http.HandlerFunc(h.submitSignup))).Methods(http.MethodPost)
	s.HandleFunc("/signup/step", h.showSignupStep).Methods(http.MethodGet, http.MethodHead)
	s.Handle("/signup/code", csrf.Handler(http.HandlerFunc(h.signupCode))).Methods(http.MethodPost)
	s.Handle("/signup/resend", csrf.Handler(http.HandlerFunc(h.signupResend))).Methods(http.MethodPost)
	s.Handle("/signup/username", csrf.Handler(http.HandlerFunc(h.signupUsername))).Methods(http.MethodPost)
	s.Handle("/signup/totp", csrf.Handler(http.HandlerFunc(h.signupTOTP))).Methods(http.MethodPost)
}

const signupTitle = "Create an account"

func (h *Handler) showSignup(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if _, _, err := h.flow.SignupOpen(r.Context(), id, h.binder.Ensure(w, r)); err != nil {
		h.failSignup(w, r, err, "", page{Title: signupTitle})
		return
	}
	h.render(w, http.StatusOK, "signup", page{Title: signupTitle, ClientName: h.flow.ClientName(r.Context(), id), AuthRequestID: id})
}

func (h *Handler) submitSignup(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("authRequestID")
	binding, _ := h.binder.Get(r)
	in := SignupForm{AuthRequestID: id, Binding: binding, Door: storage.DoorPages, Username: r.PostFormValue("username"), Email: r.PostFormValue("email"),
		Password: r.PostFormValue("password"), Confirm: r.PostFormValue("confirm")}
	st, err := h.flow.Signup(r.Context(), in)
	if err != nil {
		h.failSignup(w, r, err, "signup", page{Title: signupTitle, ClientName: h.flow.ClientName(r.Context(), id),
			AuthRequestID: id, Username: in.Username, Email: in.Email})
		return
	}
	h.toSignupStep(w, r, st)
}

// toSignupStep sends the browser to the sign-up's next page: the step page,
// or, once the account exists, where the finished login leads.
func (h *Handler) toSignupStep(w http.ResponseWriter, r *http.Request, st *SignupStep) {
	if st.Next != nil {
		h.follow(w, r, st.Next)
		return
	}
	http.Redirect(w, r, "/login/signup/step?"+url.Values{"signupID": {st.SignupID}}.Encode(), http.StatusSeeOther)
}

func (h *Handler) showSignupStep(w http.ResponseWriter, r *http.Request) {
	binding, _ := h.binder.Get(r)
	st, err := h.flow.SignupPending(r.Context(), SignupRef{ID: r.URL.Query().Get("signupID"), Binding: binding, Door: storage.DoorPages})
	if err != nil {
		h.failSignup(w, r, err, "", page{Title: signupTitle})
		return
	}
	h.renderSignupStep(w, http.StatusOK, st, "")
}

func (h *Handler) renderSignupStep(w http.ResponseWriter, status int, st *SignupStep, errText string) {
	p := page{Title: signupTitle, SignupID: st.SignupID, Message: st.Message, Username: st.Username, Email: st.Email, Error: errText}
	if st.Enroll != nil {
		e := st.Enroll
		p.Title, p.Secret, p.URL, p.FormAction = "Set up your authenticator", e.Secret, e.URL, "/login/signup/totp"
		p.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QR))
		h.render(w, status, "enroll_secret", p)
		return
	}
	p.AskUsername = st.State == storage.SignupUsername
	h.render(w, status, "signup_step", p)
}

func (h *Handler) signupCode(w http.ResponseWriter, r *http.Request) {
	h.signupStepPost(w, r, func(ref SignupRef, replaces string) (*SignupStep, error) {
		return h.flow.SignupVerify(r.Context(), ref, r.PostFormValue("otp"), replaces)
	})
}

func (h *Handler) signupResend(w http.ResponseWriter, r *http.Request) {
	h.signupStepPost(w, r, func(ref SignupRef, _ string) (*SignupStep, error) {
		return h.flow.SignupResend(r.Context(), ref)
	})
}

func (h *Handler) signupUsername(w http.ResponseWriter, r *http.Request) {
	h.signupStepPost(w, r, func(ref SignupRef, replaces string) (*SignupStep, error) {
		return h.flow.SignupRename(r.Context(), ref, r.PostFormValue("username"), replaces)
	})
}

func (h *Handler) signupTOTP(w http.ResponseWriter, r *http.Request) {
	h.signupStepPost(w, r, func(ref SignupRef, replaces string) (*SignupStep, error) {
		return h.flow.SignupConfirm(r.Context(), ref, r.PostFormValue("otp"), replaces)
	})
}

// signupStepPost runs one step of a pending sign-up. A mistake the user
// can fix shows the same step again with the error (the new authenticator
// too: it is still this browser's); anything else ends on a message page.
func (h *Handler) signupStepPost(w http.ResponseWriter, r *http.Request, step func(ref SignupRef, replaces string) (*SignupStep, error)) {
	binding, _ := h.binder.Get(r)
	ref := SignupRef{ID: r.PostFormValue("signupID"), Binding: binding, Door: storage.DoorPages}
	replaces := ""
	if cur := h.sessions.Current(r); cur != nil {
		replaces = cur.ID
	}
	st, err := step(ref, replaces)
	if err == nil {
		h.toSignupStep(w, r, st)
		return
	}
	e := AsError(err)
	switch e.Code {
	case CodeInvalidOTP, CodeInvalidRequest, CodeThrottled, CodeBusy:
		if again, perr := h.flow.SignupPending(r.Context(), ref); perr == nil {
			e.setRetryAfter(w)
			h.renderSignupStep(w, e.Status(), again, e.Message)
			return
		}
	}
	h.failSignup(w, r, err, "", page{Title: signupTitle})
}

// failSignup shows a failed sign-up step: on form (the sign-up form) if
// the user can fix it there, otherwise on a message page.
func (h *Handler) failSignup(w http.ResponseWriter, r *http.Request, err error, form string, p page) {
	e := AsError(err)
	if e.Code == CodeServerError {
		h.log.ErrorContext(r.Context(), "sign-up page", "path", r.URL.Path, "err", err)
	}
	e.setRetryAfter(w)
	p.Error = e.Message
	switch e.Code {
	case CodeInvalidRequest, CodeThrottled, CodeBusy:
		if form != "" && p.AuthRequestID != "" {
			h.render(w, e.Status(), form, p)
			return
		}
	}
	h.render(w, e.Status(), "message", page{Title: p.Title, Error: e.Message})
}
