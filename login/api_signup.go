package login

import (
	"encoding/base64"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/storage"
)

// Sign-up on the JSON login API, for a client with its own login page (a
// login_url) and sign-up on: the same steps as stile's sign-up pages.
//
//	POST /login/api/signup          {authRequestID, loginToken, username, email, password, confirm} → {status, signupID, step: CODE, message}
//	POST /login/api/signup/verify   {signupID, otp} → {status, signupID, step: USERNAME | TOTP_ENROLL (+ secret, otpauthURL, qr)} or {status, redirectURI}
//	POST /login/api/signup/username {signupID, username} → as verify
//	POST /login/api/signup/totp     {signupID, otp} → {status, redirectURI}
//	POST /login/api/signup/resend   {signupID} → {status, signupID, step: CODE, message}
//
// The first call needs the loginToken that /login gave the bound browser's
// page, as authenticate does; a sign-up it opens belongs to this door and
// no other. redirectURI is a session ticket that works only in the bound
// browser (handover.go). Each call's Origin must be registered on the
// client.
func (h *Handler) mountSignupAPI(a *mux.Router) {
	a.HandleFunc("/signup", h.apiSignup).Methods(http.MethodPost, http.MethodOptions)
	a.HandleFunc("/signup/verify", h.apiSignupStep).Methods(http.MethodPost, http.MethodOptions)
	a.HandleFunc("/signup/username", h.apiSignupStep).Methods(http.MethodPost, http.MethodOptions)
	a.HandleFunc("/signup/totp", h.apiSignupStep).Methods(http.MethodPost, http.MethodOptions)
	a.HandleFunc("/signup/resend", h.apiSignupStep).Methods(http.MethodPost, http.MethodOptions)
}

// The steps a sign-up on the API reports.
const (
	SignupStepCode     = "CODE"
	SignupStepUsername = "USERNAME"
	SignupStepEnroll   = MethodTOTPEnroll
)

type signupResponse struct {
	Status      string `json:"status"`
	SignupID    string `json:"signupID,omitempty"`
	Step        string `json:"step,omitempty"`
	Message     string `json:"message,omitempty"`
	RedirectURI string `json:"redirectURI,omitempty"`
	Secret      string `json:"secret,omitempty"`
	OTPAuthURL  string `json:"otpauthURL,omitempty"`
	QR          string `json:"qr,omitempty"`
}

func (h *Handler) apiSignup(w http.ResponseWriter, r *http.Request) {
	var in struct{ AuthRequestID, LoginToken, Username, Email, Password, Confirm string }
	if !h.decodeJSON(w, r, &in) {
		return
	}
	if ar, err := h.flow.db.GetAuthRequest(r.Context(), in.AuthRequestID); err == nil && !h.originAllowed(r, ar.ClientID) {
		h.apiError(w, r, errOrigin)
		return
	}
	st, err := h.flow.Signup(r.Context(), SignupForm{AuthRequestID: in.AuthRequestID, Binding: []byte(in.LoginToken), Door: storage.DoorAPI,
		Username: in.Username, Email: in.Email, Password: in.Password, Confirm: in.Confirm})
	h.apiSignupAnswer(w, r, st, err)
}

// apiSignupStep runs the step its path names on a sign-up of this door.
func (h *Handler) apiSignupStep(w http.ResponseWriter, r *http.Request) {
	var in struct{ SignupID, OTP, Username string }
	if !h.decodeJSON(w, r, &in) {
		return
	}
	if s, err := h.flow.db.GetSignup(r.Context(), in.SignupID); err == nil && !h.originAllowed(r, s.ClientID) {
		h.apiError(w, r, errOrigin)
		return
	}
	ctx, ref := r.Context(), SignupRef{ID: in.SignupID, Door: storage.DoorAPI}
	var st *SignupStep
	var err error
	switch r.URL.Path {
	case "/login/api/signup/verify":
		st, err = h.flow.SignupVerify(ctx, ref, in.OTP, "")
	case "/login/api/signup/username":
		st, err = h.flow.SignupRename(ctx, ref, in.Username, "")
	case "/login/api/signup/totp":
		st, err = h.flow.SignupConfirm(ctx, ref, in.OTP, "")
	default:
		st, err = h.flow.SignupResend(ctx, ref)
	}
	h.apiSignupAnswer(w, r, st, err)
}

func (h *Handler) apiSignupAnswer(w http.ResponseWriter, r *http.Request, st *SignupStep, err error) {
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	if st.Next != nil {
		next, err := h.apiNext(r.Context(), st.Next, st.AuthRequestID)
		if err != nil {
			h.apiError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, signupResponse{Status: "SUCCESS", RedirectURI: next})
		return
	}
	res := signupResponse{Status: "SUCCESS", SignupID: st.SignupID, Message: st.Message}
	switch st.State {
	case storage.SignupUsername:
		res.Step = SignupStepUsername
	case storage.SignupEnroll:
		res.Step = SignupStepEnroll
		if e := st.Enroll; e != nil {
			res.Secret, res.OTPAuthURL = e.Secret, e.URL
			res.QR = "data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QR)
		}
	default:
		res.Step = SignupStepCode
	}
	writeJSON(w, http.StatusOK, res)
}
