package login

import (
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"

	"github.com/stile-id/stile/storage"
)

// The second step's pages: the code form (TOTP, email or SMS, or a recovery
// code), or a new authenticator to scan when the client's enrolment policy
// asks for one.

// toStep sends the browser to the page of a transaction's current step.
func (h *Handler) toStep(w http.ResponseWriter, r *http.Request, txID, arID string) {
	q := url.Values{"transactionID": {txID}, "authRequestID": {arID}}
	http.Redirect(w, r, "/login/otp?"+q.Encode(), http.StatusSeeOther)
}

func (h *Handler) showOTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	notice := ""
	if q.Get("resent") != "" {
		notice = msgResent
	}
	h.showStep(w, r, http.StatusOK, q.Get("transactionID"), q.Get("authRequestID"), "", notice)
}

const msgResent = "A new code is on its way. The earlier one no longer works."

// showStep renders the transaction's current step, with an error or a
// notice if there is one.
func (h *Handler) showStep(w http.ResponseWriter, r *http.Request, status int, txID, arID, errMsg, notice string) {
	binding, _ := h.binder.Get(r)
	ch, err := h.flow.Pending(r.Context(), txID, binding)
	if err != nil {
		h.fail(w, r, err, page{Title: "Enter your code", AuthRequestID: arID})
		return
	}
	p := page{Title: "Enter your code", AuthRequestID: arID, TransactionID: txID, Message: ch.Message, Error: errMsg,
		Resend: ch.Method == MethodEmail || ch.Method == MethodSMS, Passwordless: ch.Passwordless, ClientName: ch.ClientName,
		Recovery: !ch.Passwordless && r.FormValue("recovery") != ""} // the switch to a text field for a recovery code (a link, no script)
	if p.Recovery {
		p.Title = "Enter a recovery code"
	}
	if h.flow.cancellable(r.Context(), arID, binding) {
		p.CancelID = arID
	}
	if notice != "" {
		p.Message = notice
	}
	if e := ch.Enroll; e != nil {
		p.Title, p.FormAction = "Set up your authenticator", "/login/otp"
		p.Username, p.Secret, p.URL = e.Username, e.Secret, e.URL
		p.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QR))
		h.render(w, status, "enroll_secret", p)
		return
	}
	h.render(w, status, "otp", p)
}

func (h *Handler) submitOTP(w http.ResponseWriter, r *http.Request) {
	txID, arID := r.PostFormValue("transactionID"), r.PostFormValue("authRequestID")
	binding, _ := h.binder.Get(r)
	in := OneTimeCode{TransactionID: txID, Binding: binding, Door: storage.DoorPages, OTP: r.PostFormValue("otp"),
		Device: h.flow.devices.read(r), RemoteAddr: r.RemoteAddr}
	if cur := h.sessions.Current(r); cur != nil {
		in.Replaces = cur.ID
	}
	v, err := h.flow.Verify(r.Context(), in)
	switch {
	case err != nil:
		h.stepFailed(w, r, err, txID, arID)
	case v.Enroll != nil:
		h.toStep(w, r, txID, arID)
	default:
		h.follow(w, r, v.Next)
	}
}

func (h *Handler) resendOTP(w http.ResponseWriter, r *http.Request) {
	txID, arID := r.PostFormValue("transactionID"), r.PostFormValue("authRequestID")
	binding, _ := h.binder.Get(r)
	if _, err := h.flow.Resend(r.Context(), txID, binding, storage.DoorPages); err != nil {
		h.stepFailed(w, r, err, txID, arID)
		return
	}
	// Redirect, so that reloading the page shows it again rather than
	// sending yet another code.
	q := url.Values{"transactionID": {txID}, "authRequestID": {arID}, "resent": {"1"}}
	http.Redirect(w, r, "/login/otp?"+q.Encode(), http.StatusSeeOther)
}

// stepFailed re-shows the step for errors the user can fix; the others end
// on a message page.
func (h *Handler) stepFailed(w http.ResponseWriter, r *http.Request, err error, txID, arID string) {
	e := AsError(err)
	switch e.Code {
	case CodeInvalidOTP, CodeInvalidRequest, CodeThrottled:
		e.setRetryAfter(w)
		h.showStep(w, r, e.Status(), txID, arID, e.Message, "")
	default:
		h.fail(w, r, err, page{Title: "Enter your code", AuthRequestID: arID})
	}
}
