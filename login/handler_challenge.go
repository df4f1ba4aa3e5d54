package login

import (
	"errors"
	"math"
	"mime"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/storage"
)

// ChallengePath is the authorization challenge endpoint
// (draft-ietf-oauth-first-party-apps-04 §4.1), advertised in discovery as
// authorization_challenge_endpoint.
const ChallengePath = "/oauth/authorize-challenge"

// The endpoint speaks the draft's protocol: form-encoded requests, JSON
// answers, OAuth error codes. Every request authenticates the client as
// the token endpoint does (client_secret_basic or _post for a confidential
// client; client_id alone for a public one) and carries the PKCE
// code_challenge the auth_session was issued for:
//
//	response_type=code, scope, code_challenge(_method=S256), username, password
//	    → 403 insufficient_authorization {auth_session, auth_type: TOTP|EMAIL|SMS}
//	    → 403 redirect_to_web (the sign-in needs the browser: an authenticator to enrol)
//	auth_session, code_challenge, otp (or a recovery code)
//	    → 200 {authorization_code}, redeemed at the token endpoint with the code_verifier
//
// Errors (all JSON, Cache-Control: no-store):
//
//	400 invalid_request         malformed, or a parameter repeated
//	401 invalid_client          the client's authentication failed (WWW-Authenticate: Basic)
//	400 unauthorized_client     the client may not use the endpoint (not first-party, first_party_app off)
//	400 invalid_grant           unknown user or wrong password (one answer, one cost); wrong code (auth_session still good)
//	400 invalid_session         auth_session unknown, expired, used, dead, another client's or another code_challenge's
//	403 access_denied           the account is disabled or has no second factor this client's policy allows
//	429 throttled               too many attempts: Retry-After says when to come back
//	503 temporarily_unavailable the password checks are all busy: Retry-After
func (h *Handler) mountChallenge(r *mux.Router) {
	if h.flow.challenger == nil {
		return
	}
	c := r.Path(ChallengePath).Subrouter()
	c.Methods(http.MethodPost).HandlerFunc(h.serveChallenge)
	answerWrongMethods(c, func(w http.ResponseWriter, _ *http.Request) {
		writeChallenge(w, http.StatusMethodNotAllowed, challengeAnswer{Error: "invalid_request", Description: "Use POST."})
	})
}

// challengeAnswer is every answer's body; empty fields are left out.
type challengeAnswer struct {
	Code        string `json:"authorization_code,omitempty"`
	Error       string `json:"error,omitempty"`
	Description string `json:"error_description,omitempty"`
	AuthSession string `json:"auth_session,omitempty"`
	AuthType    string `json:"auth_type,omitempty"`   // insufficient_authorization: the code the user must enter
	TriesLeft   int    `json:"tries_left,omitempty"`  // invalid_grant for a wrong code: how many more the auth_session takes
	RetryAfter  int    `json:"retry_after,omitempty"` // throttled, temporarily_unavailable: seconds, as in Retry-After
}

func writeChallenge(w http.ResponseWriter, status int, a challengeAnswer) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="stile"`)
	}
	writeJSON(w, status, a)
}

// challengeParams are the parameters the endpoint reads itself; each may
// appear once (RFC 6749 §3.1). The provider reads the OAuth ones.
var challengeParams = []string{"client_id", "client_secret", "response_type", "scope", "code_challenge", "code_challenge_method",
	"nonce", "auth_session", "username", "password", "otp"}

func (h *Handler) serveChallenge(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Origin") != "" {
		// For native apps and servers: a browser has /authorize. Refusing
		// browsers keeps other sites from having their visitors' browsers
		// post guesses here.
		writeChallenge(w, http.StatusBadRequest, challengeAnswer{Error: "invalid_request",
			Description: "The authorization challenge endpoint is not for browsers; use /authorize."})
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		writeChallenge(w, http.StatusBadRequest, challengeAnswer{Error: "invalid_request",
			Description: "Send the parameters form-encoded (application/x-www-form-urlencoded)."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeChallenge(w, http.StatusBadRequest, challengeAnswer{Error: "invalid_request", Description: "The form could not be read."})
		return
	}
	for _, p := range challengeParams {
		if len(r.PostForm[p]) > 1 {
			writeChallenge(w, http.StatusBadRequest, challengeAnswer{Error: "invalid_request", Description: p + " appears more than once."})
			return
		}
	}
	f := r.PostForm
	session := f.Get("auth_session")
	ar, err := h.flow.challenger.ChallengeRequest(r, session == "")
	if err != nil {
		h.challengeError(w, r, err, "")
		return
	}
	if session == "" {
		h.challengeStart(w, r, ar)
		return
	}
	if f.Has("username") || f.Has("password") {
		writeChallenge(w, http.StatusBadRequest, challengeAnswer{Error: "invalid_request",
			Description: "Send either username and password, or auth_session and otp."})
		return
	}
	arID, err := h.flow.VerifyChallenge(r.Context(), ChallengeStep{AuthSession: session, ClientID: ar.ClientID,
		CodeChallenge: ar.CodeChallenge, OTP: f.Get("otp"), RemoteAddr: r.RemoteAddr})
	if err != nil {
		h.challengeError(w, r, err, session)
		return
	}
	code, err := h.flow.challenger.ChallengeCode(r.Context(), arID)
	if err != nil {
		h.challengeError(w, r, internal(err), "")
		return
	}
	writeChallenge(w, http.StatusOK, challengeAnswer{Code: code})
}

// challengeStart is the first request: username and password.
func (h *Handler) challengeStart(w http.ResponseWriter, r *http.Request, ar *storage.AuthRequest) {
	f := r.PostForm
	if f.Has("otp") {
		writeChallenge(w, http.StatusBadRequest, challengeAnswer{Error: "invalid_request",
			Description: "Send otp with the auth_session the first request answered."})
		return
	}
	ch, err := h.flow.AuthenticateChallenge(r.Context(), ChallengeStart{AuthRequest: ar, Username: f.Get("username"),
		Password: f.Get("password"), RemoteAddr: r.RemoteAddr})
	if err != nil {
		h.challengeError(w, r, err, "")
		return
	}
	writeChallenge(w, http.StatusForbidden, challengeAnswer{Error: "insufficient_authorization", Description: ch.Message,
		AuthSession: ch.TransactionID, AuthType: ch.Method})
}

// challengeError writes every refusal, in one place: the provider's OAuth
// errors as they are, the login's mapped to the draft's and RFC 6749's
// codes with generic text. session is the auth_session that stays good
// after a wrong code.
func (h *Handler) challengeError(w http.ResponseWriter, r *http.Request, err error, session string) {
	var oe *OAuthError
	if errors.As(err, &oe) {
		status := http.StatusBadRequest
		switch oe.Code {
		case "invalid_client":
			status = http.StatusUnauthorized
		case "server_error":
			status = http.StatusInternalServerError
		}
		writeChallenge(w, status, challengeAnswer{Error: oe.Code, Description: oe.Description})
		return
	}
	e := AsError(err)
	a := challengeAnswer{Description: e.Message}
	status := http.StatusBadRequest
	switch e.Code {
	case CodeInvalidRequest:
		a.Error = "invalid_request"
	case CodeInvalidCredentials:
		a.Error = "invalid_grant"
	case CodeInvalidOTP:
		a.Error, a.AuthSession, a.TriesLeft = "invalid_grant", session, e.TriesLeft
	case CodeExpired, CodeWrongBrowser:
		// Unknown, expired, used, dead, another client's or another
		// challenge's: one answer, so the endpoint tells nothing about
		// auth_sessions the caller does not hold.
		a.Error, a.Description = "invalid_session", "The auth_session is not valid (expired, used, or not this client's "+
			"for this code_challenge). Start again with username and password."
	case CodeAccountDisabled, CodeNoSecondFactor:
		a.Error, status = "access_denied", http.StatusForbidden
	case CodeRedirectToWeb:
		a.Error, status = "redirect_to_web", http.StatusForbidden
	case CodeThrottled:
		a.Error, status = "throttled", http.StatusTooManyRequests
	case CodeBusy:
		a.Error, status = "temporarily_unavailable", http.StatusServiceUnavailable
	default:
		h.log.ErrorContext(r.Context(), "authorization challenge", "err", err)
		a.Error, a.Description, status = "server_error", "Something went wrong on our side. Please try again.", http.StatusInternalServerError
	}
	if e.RetryAfter > 0 {
		e.setRetryAfter(w)
		a.RetryAfter = retrySeconds(e.RetryAfter)
	}
	writeChallenge(w, status, a)
}

// retrySeconds is a wait in whole seconds, rounded up, as Retry-After says it.
func retrySeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }
