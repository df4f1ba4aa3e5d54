package login

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/storage"
)

// The passwordless pages (passwordless.go), for a client with the switch:
//
//	GET  /login/code?authRequestID=…  the identifier form ("Sign in with a code instead")
//	POST /login/code                  identifier → 303 to /login/otp (the same code page), whoever it names
//
// and its JSON API twin for custom login pages:
//
//	POST /login/api/passwordless {authRequestID, loginToken, username} → {status, transactionID, authType, message}
//
// then /login/api/verify and /login/api/resend as after a password.

func (h *Handler) mountPasswordless(s *mux.Router, csrf *http.CrossOriginProtection) {
	s.HandleFunc("/code", h.showCode).Methods(http.MethodGet, http.MethodHead)
	s.Handle("/code", csrf.Handler(http.HandlerFunc(h.submitCode))).Methods(http.MethodPost)
}

// signInPage fills in what the sign-in forms show of the deployment's
// identifiers and the client's passwordless switch.
func (h *Handler) signInPage(ctx context.Context, p page) page {
	p.IdentifierLabel, p.IdentifierType = h.flow.signInWith.Label(), h.flow.signInWith.InputType()
	p.Passwordless = p.AuthRequestID != "" && h.flow.Passwordless(ctx, p.AuthRequestID)
	p.Signup = p.AuthRequestID != "" && h.flow.SignupAllowed(ctx, p.AuthRequestID)
	return p
}

func (h *Handler) showCode(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if !h.flow.Passwordless(r.Context(), id) {
		h.fail(w, r, errNoPasswordless, page{Title: "Sign in"})
		return
	}
	h.render(w, http.StatusOK, "code", h.signInPage(r.Context(), page{Title: "Sign in with a code",
		ClientName: h.flow.ClientName(r.Context(), id), AuthRequestID: id}))
}

func (h *Handler) submitCode(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("authRequestID")
	binding, _ := h.binder.Get(r)
	ch, err := h.flow.StartPasswordless(r.Context(), CodeRequest{AuthRequestID: id, Binding: binding, Door: storage.DoorPages,
		Identifier: r.PostFormValue("username"), RemoteAddr: r.RemoteAddr})
	if err != nil {
		e := AsError(err)
		if e.Code == CodeInvalidRequest || e.Code == CodeThrottled {
			e.setRetryAfter(w)
			p := h.signInPage(r.Context(), page{Title: "Sign in with a code", ClientName: h.flow.ClientName(r.Context(), id),
				AuthRequestID: id, Username: r.PostFormValue("username"), Error: e.Message})
			h.render(w, e.Status(), "code", p)
			return
		}
		h.fail(w, r, err, page{Title: "Sign in"})
		return
	}
	h.toStep(w, r, ch.TransactionID, id)
}

func (h *Handler) apiPasswordless(w http.ResponseWriter, r *http.Request) {
	var in struct{ AuthRequestID, LoginToken, Username string }
	if !h.decodeJSON(w, r, &in) {
		return
	}
	ar, err := h.flow.db.GetAuthRequest(r.Context(), in.AuthRequestID)
	if err == nil && !h.originAllowed(r, ar.ClientID) {
		h.apiError(w, r, errOrigin)
		return
	}
	ch, err := h.flow.StartPasswordless(r.Context(), CodeRequest{AuthRequestID: in.AuthRequestID, Door: storage.DoorAPI,
		Binding: []byte(in.LoginToken), Identifier: in.Username, RemoteAddr: r.RemoteAddr})
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, challengeResponse(ch))
}
