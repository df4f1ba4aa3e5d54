package login

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/storage"
)

// The JSON login API, for login pages a client renders itself (its
// login_url). It drives the same Flow as stile's pages:
//
//	POST /login/api/authenticate {authRequestID, loginToken, username, password} → {status, transactionID, authType, message}
//	POST /login/api/verify       {transactionID, otp}                 → {status, redirectURI} (or the next step)
//	POST /login/api/resend       {transactionID}                      → {status, transactionID, authType, message}
//
// The page calls it cross-origin and without credentials: the browser was
// bound to the request at stile's /login hand-off, which sent it to the
// page with authRequestID and loginToken; authenticate needs both, so only
// that page can start the transaction (doors.go). What redirectURI
// leads to — the session ticket (handover.go), then the callback — works
// only in that browser. Only clients with a login_url have this door, and
// its transactions no other (doors.go). Each call's Origin must be one
// registered on the client the request or transaction belongs to.
func (h *Handler) mountAPI(r *mux.Router) {
	a := r.PathPrefix("/login/api").Subrouter()
	a.Use(h.apiCORS)
	a.HandleFunc("/authenticate", h.apiAuthenticate).Methods(http.MethodPost, http.MethodOptions)
	a.HandleFunc("/verify", h.apiVerify).Methods(http.MethodPost, http.MethodOptions)
	a.HandleFunc("/resend", h.apiResend).Methods(http.MethodPost, http.MethodOptions)
	a.HandleFunc("/password/forgot", h.apiForgot).Methods(http.MethodPost, http.MethodOptions)
	a.HandleFunc("/passwordless", h.apiPasswordless).Methods(http.MethodPost, http.MethodOptions)
	h.mountSignupAPI(a)
	answerWrongMethods(a, h.wrongMethodJSON)
}

// apiResponse is every answer's shape; empty fields are left out.
type apiResponse struct {
	Status        string `json:"status"` // SUCCESS or FAILED
	TransactionID string `json:"transactionID,omitempty"`
	AuthType      string `json:"authType,omitempty"`
	Message       string `json:"message,omitempty"`
	RedirectURI   string `json:"redirectURI,omitempty"`
	Error         Code   `json:"error,omitempty"`
	TriesLeft     int    `json:"triesLeft,omitempty"` // invalid_otp: wrong codes the transaction still takes
	// TOTP_ENROLL: the new authenticator, confirmed by the next verify.
	Secret     string `json:"secret,omitempty"`
	OTPAuthURL string `json:"otpauthURL,omitempty"`
	QR         string `json:"qr,omitempty"` // a data: URL of a PNG
}

func (h *Handler) apiAuthenticate(w http.ResponseWriter, r *http.Request) {
	var in struct{ AuthRequestID, LoginToken, Username, Password string }
	if !h.decodeJSON(w, r, &in) {
		return
	}
	ar, err := h.flow.db.GetAuthRequest(r.Context(), in.AuthRequestID)
	if err == nil && !h.originAllowed(r, ar.ClientID) {
		h.apiError(w, r, errOrigin)
		return
	}
	// The loginToken is this door's proof, as the cookie's MAC is the
	// pages': the JSON API's Binding (doors.go, authRequestDoor).
	ch, err := h.flow.Authenticate(r.Context(), Credentials{AuthRequestID: in.AuthRequestID, Door: storage.DoorAPI,
		Binding: []byte(in.LoginToken), Username: in.Username, Password: in.Password, RemoteAddr: r.RemoteAddr})
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	res := challengeResponse(ch)
	if ch.Next != nil { // an exempt account: the browser needs its session too
		if res.RedirectURI, err = h.apiNext(r.Context(), ch.Next, in.AuthRequestID); err != nil {
			h.apiError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, res)
}

func challengeResponse(ch *Challenge) apiResponse {
	res := apiResponse{Status: "SUCCESS", TransactionID: ch.TransactionID, AuthType: ch.Method, Message: ch.Message}
	if ch.Next != nil { // an exempt account: no second step
		res.RedirectURI = ch.Next.RedirectURI
	}
	if e := ch.Enroll; e != nil {
		res.Secret, res.OTPAuthURL = e.Secret, e.URL
		res.QR = "data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QR)
	}
	return res
}

func (h *Handler) apiVerify(w http.ResponseWriter, r *http.Request) {
	var in struct{ TransactionID, OTP string }
	if !h.decodeJSON(w, r, &in) {
		return
	}
	tx, ok := h.txOrigin(w, r, in.TransactionID)
	if !ok {
		return
	}
	v, err := h.flow.Verify(r.Context(), OneTimeCode{TransactionID: in.TransactionID, Door: storage.DoorAPI, OTP: in.OTP, RemoteAddr: r.RemoteAddr})
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	if v.Enroll != nil {
		writeJSON(w, http.StatusOK, challengeResponse(&Challenge{TransactionID: in.TransactionID, Method: MethodTOTPEnroll,
			Message: "Scan the QR code with an authenticator app, then send the code it shows.", Enroll: v.Enroll}))
		return
	}
	arID := ""
	if tx != nil { // nil only if its first read failed and Verify's did not
		arID = tx.AuthRequestID.String
	}
	next, err := h.apiNext(r.Context(), v.Next, arID)
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiResponse{Status: "SUCCESS", RedirectURI: next})
}

func (h *Handler) apiResend(w http.ResponseWriter, r *http.Request) {
	var in struct{ TransactionID string }
	if !h.decodeJSON(w, r, &in) {
		return
	}
	if _, ok := h.txOrigin(w, r, in.TransactionID); !ok {
		return
	}
	ch, err := h.flow.Resend(r.Context(), in.TransactionID, nil, storage.DoorAPI)
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, challengeResponse(ch))
}

// txOrigin checks the Origin against the transaction's client, and returns
// the transaction (nil if there is none: the step itself then says so).
func (h *Handler) txOrigin(w http.ResponseWriter, r *http.Request, txID string) (*storage.LoginTransaction, bool) {
	tx, err := h.flow.db.GetLoginTransaction(r.Context(), txID)
	if err != nil {
		return nil, true
	}
	if !h.originAllowed(r, tx.ClientID) {
		h.apiError(w, r, errOrigin)
		return nil, false
	}
	return tx, true
}

var errOrigin = &Error{Code: CodeOriginNotAllowed, Message: "This page's origin is not registered for the application."}

// originAllowed: a request without Origin is not from a browser page; one
// with it must come from an origin the client registered.
func (h *Handler) originAllowed(r *http.Request, clientID string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	c, err := h.flow.db.GetClient(r.Context(), clientID)
	return err == nil && slices.Contains(c.WebOrigins, origin)
}

// apiCORS answers preflights and tags responses for origins some client
// registered (the body, and so the client, is unknown at preflight; each
// call checks its own client's origins). Credentials are never allowed.
func (h *Handler) apiCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && h.origins.known(r.Context(), h.flow.db, origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "POST")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// originSet caches the web origins all clients registered; a change to a
// client reloads it (the store's cache generation, storage/cache.go).
type originSet struct {
	mu       sync.Mutex
	set      map[string]bool
	loadedAt time.Time
	gen      uint64
}

func (o *originSet) known(ctx context.Context, db *storage.DB, origin string) bool {
	gen := db.Generation(ctx)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.set == nil || time.Since(o.loadedAt) > 30*time.Second || gen != o.gen {
		clients, err := db.ListClients(ctx)
		if err != nil {
			return o.set[origin]
		}
		o.set = map[string]bool{}
		for _, c := range clients {
			for _, w := range c.WebOrigins {
				o.set[w] = true
			}
		}
		o.loadedAt, o.gen = time.Now(), gen
	}
	return o.set[origin]
}

var errMediaType = &Error{Code: CodeUnsupportedMedia, Message: "Send the body as JSON, with Content-Type: application/json."}

// decodeJSON reads the JSON object of a POST. The body must be labelled
// application/json: a text/plain, form or multipart body is a CORS "simple"
// request, which any page can send cross-origin without a preflight, so
// accepting it would let a page skip the preflight's origin check.
func (h *Handler) decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		h.apiError(w, r, errMediaType)
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(v); err != nil {
		h.apiError(w, r, fail(CodeInvalidRequest, "The request body must be a JSON object."))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// apiError writes every API error: the status for its code, the stable
// code, a message for people, Retry-After when throttled. Internal detail
// goes to the log only.
func (h *Handler) apiError(w http.ResponseWriter, r *http.Request, err error) {
	e := AsError(err)
	if e.Code == CodeServerError {
		h.log.ErrorContext(r.Context(), "login API", "err", err)
	}
	e.setRetryAfter(w)
	writeJSON(w, e.Status(), apiResponse{Status: "FAILED", Error: e.Code, Message: e.Message, TriesLeft: e.TriesLeft})
}
