package login

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// Self-service second-factor management, for a signed-in user through a
// first-party application: its access token must carry the stile:mfa scope
// and come from a sign-in at most RecentSignIn old.
//
//	GET    /account/api/mfa                 what the user has
//	POST   /account/api/mfa/totp            {otp}: a new authenticator to scan: {secret, otpauthURL, qr}
//	POST   /account/api/mfa/totp/confirm    {otp}: its first code makes it the user's
//	DELETE /account/api/mfa/totp            {otp}: a current code or a recovery code removes it
//	POST   /account/api/mfa/recovery-codes  {otp}: ten new recovery codes, shown once
//
// Adding, replacing and removing a factor, and new recovery codes, take a
// fresh code from a factor the user has (selfservice_proof.go).
//	PUT    /account/api/mfa/preferred       {method}: TOTP, EMAIL or SMS
//
// Every change is notified to the user by email when one is on file.

// Principal is who holds the access token of a self-service call.
type Principal struct {
	UserID     string
	ClientID   string // the client the token was issued to: the audit trail names it
	Scopes     []string
	AuthTime   time.Time
	FirstParty bool
}

// Authorizer reads a request's access token; the provider does.
type Authorizer func(r *http.Request) (*Principal, error)

// RecentSignIn is how old a sign-in may be to change second factors
// (ASVS 7.5.1: re-authenticate before changing a factor).
const RecentSignIn = 10 * time.Minute

const scopeMFA = "stile:mfa"

func (h *Handler) mountSelfService(r *mux.Router) {
	a := r.PathPrefix("/account/api/mfa").Subrouter()
	a.Use(h.selfServiceCORS)
	a.HandleFunc("", h.mfaStatus).Methods(http.MethodGet, http.MethodOptions)
	a.HandleFunc("/totp", h.mfaAddTOTP).Methods(http.MethodPost, http.MethodOptions)
	a.HandleFunc("/totp/confirm", h.mfaConfirmTOTP).Methods(http.MethodPost, http.MethodOptions)
	a.HandleFunc("/totp", h.mfaRemoveTOTP).Methods(http.MethodDelete)
	a.HandleFunc("/recovery-codes", h.mfaRecoveryCodes).Methods(http.MethodPost, http.MethodOptions)
	a.HandleFunc("/preferred", h.mfaPreferred).Methods(http.MethodPut, http.MethodOptions)
	answerWrongMethods(a, h.wrongMethodJSON)
}

// selfServiceCORS is the API's CORS: registered origins, bearer tokens,
// never credentials.
func (h *Handler) selfServiceCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && h.origins.known(r.Context(), h.flow.db, origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

var (
	errUnauthorized = &Error{Code: CodeUnauthorized, Message: "Send an access token of a first-party application with the stile:mfa scope."}
	errStepUp       = &Error{Code: CodeStepUpRequired, Message: "Sign in again (prompt=login or max_age) to change your second factors."}
)

// principal checks the call's token: active, the scope, a first-party
// client, a recent sign-in. It returns the user.
func (h *Handler) principal(w http.ResponseWriter, r *http.Request) (*storage.User, string, bool) {
	if h.authorize == nil {
		h.apiError(w, r, errNotEnabled)
		return nil, "", false
	}
	p, err := h.authorize(r)
	if err != nil || !slices.Contains(p.Scopes, scopeMFA) || !p.FirstParty {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stile", scope="`+scopeMFA+`"`)
		h.apiError(w, r, errUnauthorized)
		return nil, "", false
	}
	if h.flow.now().Sub(p.AuthTime) > RecentSignIn {
		h.apiError(w, r, errStepUp)
		return nil, "", false
	}
	u, err := h.flow.db.GetUser(r.Context(), p.UserID)
	if err != nil {
		h.apiError(w, r, internal(err))
		return nil, "", false
	}
	return u, p.ClientID, true
}

type mfaStatus struct {
	TOTP          bool   `json:"totp"`
	Email         bool   `json:"email"` // codes can be emailed to the address on file
	SMS           bool   `json:"sms"`
	Preferred     string `json:"preferred"`
	RecoveryCodes int    `json:"recoveryCodesLeft"`
}

func (h *Handler) mfaStatus(w http.ResponseWriter, r *http.Request) {
	u, _, ok := h.principal(w, r)
	if !ok {
		return
	}
	has, err := h.flow.factorsOf(r.Context(), u)
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	left, err := h.flow.db.RecoveryCodesLeft(r.Context(), u.ID)
	if err != nil {
		h.apiError(w, r, internal(err))
		return
	}
	writeJSON(w, http.StatusOK, mfaStatus{TOTP: has.TOTP, Email: has.Email, SMS: has.SMS, Preferred: u.Preferred, RecoveryCodes: left})
}

func (h *Handler) mfaAddTOTP(w http.ResponseWriter, r *http.Request) {
	u, client, ok := h.principal(w, r)
	if !ok {
		return
	}
	code, ok := h.proofCode(w, r)
	if !ok {
		return
	}
	if err := h.flow.proveFactor(r.Context(), u, code); err != nil {
		h.flow.recordFor(r.Context(), EventTOTPAdded, u, client, err, storage.Attributes{"step": "proof"})
		h.apiError(w, r, err)
		return
	}
	e, err := h.flow.pendingTOTP(r.Context(), u)
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiResponse{Status: "SUCCESS", AuthType: MethodTOTPEnroll, Secret: e.Secret, OTPAuthURL: e.URL,
		QR:      "data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QR),
		Message: "Scan the QR code, then confirm with the code the app shows."})
}

func (h *Handler) mfaConfirmTOTP(w http.ResponseWriter, r *http.Request) {
	var in struct{ OTP string }
	u, client, ok := h.principal(w, r)
	if !ok || !h.decodeJSON(w, r, &in) {
		return
	}
	secret, step, err := h.flow.confirmPendingTOTP(r.Context(), u, strings.TrimSpace(in.OTP))
	if err != nil { // the guess failed: the change was never asked for
		h.flow.recordFor(r.Context(), EventTOTPAdded, u, client, err, storage.Attributes{"method": MethodTOTP})
	} else if err = h.flow.accounts.AddTOTP(r.Context(), actor(r, u, client), u, secret, step); err != nil {
		err = internal(err)
	}
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiResponse{Status: "SUCCESS", Message: "Your authenticator app is set up."})
}

func (h *Handler) mfaRemoveTOTP(w http.ResponseWriter, r *http.Request) {
	var in struct{ OTP string }
	u, client, ok := h.principal(w, r)
	if !ok || !h.decodeJSON(w, r, &in) {
		return
	}
	err := h.flow.proveTOTPRemoval(r.Context(), u, strings.TrimSpace(in.OTP))
	if err != nil {
		h.flow.recordFor(r.Context(), EventFactorRemoved, u, client, err, storage.Attributes{"method": MethodTOTP})
	} else if err = h.flow.accounts.RemoveTOTP(r.Context(), actor(r, u, client), u); err != nil {
		err = internal(err)
	}
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiResponse{Status: "SUCCESS", Message: "Your authenticator app was removed."})
}

func (h *Handler) mfaRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	u, client, ok := h.principal(w, r)
	if !ok {
		return
	}
	code, ok := h.proofCode(w, r)
	if !ok {
		return
	}
	var codes []string
	err := h.flow.proveFactor(r.Context(), u, code)
	if err != nil {
		h.flow.recordFor(r.Context(), EventRecoveryCodes, u, client, err, nil)
	} else if codes, err = h.flow.accounts.RecoveryCodes(r.Context(), actor(r, u, client), u.ID); err != nil {
		err = internal(err)
	}
	if err != nil {
		h.apiError(w, r, AsError(err))
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Status string   `json:"status"`
		Codes  []string `json:"codes"`
	}{"SUCCESS", codes})
}

func (h *Handler) mfaPreferred(w http.ResponseWriter, r *http.Request) {
	var in struct{ Method string }
	u, client, ok := h.principal(w, r)
	if !ok || !h.decodeJSON(w, r, &in) {
		return
	}
	has, err := h.flow.factorsOf(r.Context(), u)
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	if !has.can(in.Method) {
		h.apiError(w, r, fail(CodeInvalidRequest, "method must be TOTP, EMAIL or SMS, and one you have set up"))
		return
	}
	if err := h.flow.accounts.SetPreferred(r.Context(), actor(r, u, client), u, in.Method); err != nil {
		h.apiError(w, r, internal(err))
		return
	}
	writeJSON(w, http.StatusOK, apiResponse{Status: "SUCCESS"})
}

// pendingTOTP gives the user a new authenticator secret, pending until
// its first code confirms it (confirmPendingTOTP), and returns it to show.
func (f *Flow) pendingTOTP(ctx context.Context, u *storage.User) (*Enrolling, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: f.issuerLabel, AccountName: u.Username, SecretSize: 20,
		Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, internal(err)
	}
	sealed, err := f.sealer.Seal([]byte(key.Secret()), storage.PendingTOTPAAD(u.ID))
	if err == nil {
		err = f.db.SetPendingTOTP(ctx, u.ID, sealed, f.now().Add(10*time.Minute))
	}
	if err != nil {
		return nil, internal(err)
	}
	return f.enrolling(u, key.Secret(), "")
}

// confirmPendingTOTP takes the user's pending secret if code is its
// current code, and returns it with the code's step, for the account
// service to make it theirs.
func (f *Flow) confirmPendingTOTP(ctx context.Context, u *storage.User, code string) ([]byte, int64, error) {
	sealed, err := f.db.PendingTOTP(ctx, u.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, 0, fail(CodeExpired, "Start again: ask for a new authenticator first.")
	}
	if err != nil {
		return nil, 0, internal(err)
	}
	secret, err := f.sealer.Open(sealed, storage.PendingTOTPAAD(u.ID))
	if err != nil {
		return nil, 0, internal(err)
	}
	var step int64
	err = f.guessCode(ctx, u, func() (bool, error) {
		var ok bool
		step, ok = matchTOTP(string(secret), code, f.now(), 0)
		return ok, nil
	})
	if err != nil {
		return nil, 0, err
	}
	if err := f.db.DeletePendingTOTP(ctx, u.ID); err != nil {
		return nil, 0, internal(err)
	}
	return secret, step, nil
}

// actor is who makes a self-service change: the user, through the
// token's client, from the request's address.
func actor(r *http.Request, u *storage.User, client string) account.Actor {
	a := account.Actor{UserID: u.ID, ClientID: client}
	if addr := clientip.From(r.Context()); addr.IsValid() {
		a.Remote = addr.String()
	}
	return a
}

// proveTOTPRemoval checks the code that allows removing the user's
// authenticator: a current code from it, or a recovery code.
func (f *Flow) proveTOTPRemoval(ctx context.Context, u *storage.User, code string) error {
	if _, err := f.db.GetTOTP(ctx, u.ID); errors.Is(err, storage.ErrNotFound) { // spend no recovery code on nothing
		return fail(CodeNoSecondFactor, "You have no authenticator app to remove.")
	} else if err != nil {
		return internal(err)
	}
	if err := f.guessCode(ctx, u, func() (bool, error) { return f.recoveryOrTOTP(ctx, u, code, true) }); err != nil {
		return err
	}
	return nil
}
