package login

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Code is a stable, machine-readable reason a login step failed. Custom
// login pages and scripts switch on it; the HTML pages show its message.
type Code string

const (
	CodeInvalidRequest     Code = "invalid_request"         // malformed input
	CodeInvalidCredentials Code = "invalid_credentials"     // unknown user or wrong password: never says which
	CodeInvalidOTP         Code = "invalid_otp"             // wrong, replayed or expired one-time code
	CodeAccountDisabled    Code = "account_disabled"        // right password, disabled account
	CodeNoSecondFactor     Code = "second_factor_required"  // right password, nothing enrolled for the second step
	CodeWrongBrowser       Code = "wrong_browser"           // the login belongs to another browser
	CodeExpired            Code = "transaction_expired"     // unknown, expired, finished or dead login
	CodeThrottled          Code = "throttled"               // too many failures: wait RetryAfter
	CodeOriginNotAllowed   Code = "origin_not_allowed"      // the calling page's origin is not registered
	CodeInvalidAPIKey      Code = "invalid_api_key"         // the direct mode's apiKey is wrong
	CodeNotEnabled         Code = "not_enabled"             // the feature is off
	CodeUnauthorized       Code = "unauthorized"            // self-service: no valid token
	CodeStepUpRequired     Code = "step_up_required"        // self-service: the sign-in is not recent enough
	CodeBusy               Code = "temporarily_unavailable" // the password checks are all busy: retry after RetryAfter
	CodeUnsupportedMedia   Code = "unsupported_media_type"  // the body is not application/json
	CodeMethodNotAllowed   Code = "method_not_allowed"      // the route exists for other methods
	CodeServerError        Code = "server_error"
	CodeRedirectToWeb      Code = "redirect_to_web" // the challenge endpoint: this sign-in needs the browser
)

// status maps each code to its HTTP status, in one place.
var status = map[Code]int{
	CodeInvalidRequest:     http.StatusBadRequest,
	CodeInvalidCredentials: http.StatusUnauthorized,
	CodeInvalidOTP:         http.StatusForbidden,
	CodeAccountDisabled:    http.StatusForbidden,
	CodeNoSecondFactor:     http.StatusForbidden,
	CodeWrongBrowser:       http.StatusForbidden,
	CodeExpired:            http.StatusGone,
	CodeThrottled:          http.StatusTooManyRequests,
	CodeOriginNotAllowed:   http.StatusForbidden,
	CodeInvalidAPIKey:      http.StatusBadRequest,
	CodeNotEnabled:         http.StatusNotFound,
	CodeUnauthorized:       http.StatusUnauthorized,
	CodeStepUpRequired:     http.StatusForbidden,
	CodeBusy:               http.StatusServiceUnavailable,
	CodeUnsupportedMedia:   http.StatusUnsupportedMediaType,
	CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	CodeServerError:        http.StatusInternalServerError,
	CodeRedirectToWeb:      http.StatusForbidden,
}

// Error is a failed login step: a code, the text a user may see, and the
// internal cause for the log only.
type Error struct {
	Code       Code
	Message    string
	RetryAfter time.Duration // for CodeThrottled and CodeBusy: sent as Retry-After
	TriesLeft  int           // for CodeInvalidOTP: wrong codes the transaction still takes
	Restart    bool          // the same authorization request can start over at the password
	cause      error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.cause }

// setRetryAfter sends Retry-After, in whole seconds rounded up, for an
// error that says when to come back.
func (e *Error) setRetryAfter(w http.ResponseWriter) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
}

// Status is the HTTP status for the error.
func (e *Error) Status() int { return status[e.Code] }

func fail(code Code, message string) *Error { return &Error{Code: code, Message: message} }

// internal hides err behind a generic message; the log gets the detail.
// A full hashing pool is not a fault but load: it becomes CodeBusy, so every
// step that hashes a password answers 503 with Retry-After on its own.
func internal(err error) *Error {
	if errors.Is(err, ErrBusy) {
		return &Error{Code: CodeBusy, Message: msgBusy, RetryAfter: busyRetryAfter, cause: err}
	}
	return &Error{Code: CodeServerError, Message: "Something went wrong on our side. Please try again.", cause: err}
}

// AsError returns err as a login *Error, treating anything else as internal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return internal(err)
}

// Messages users see. Unknown users and wrong passwords share one, as do all
// the ways a login can be over.
const (
	msgInvalidCredentials = "The username or password is incorrect."
	msgInvalidOTP         = "That code is not right, or no longer works. Check it and try again."
	msgExpired            = "This sign-in has expired or is already finished. Go back to the application and sign in again."
	msgDead               = "Too many wrong codes. Sign in again."
	msgWrongBrowser       = "This sign-in was started in another browser. Go back to the application and sign in again from this one."
	msgThrottled          = "Too many failed attempts." // + how long to wait: throttled()
	msgDisabled           = "This account is disabled. Contact your administrator."
	msgNoSecondFactor     = "This account has no second factor set up. Contact your administrator to set one up."
	msgBusy               = "We are checking too many sign-ins right now. Wait a moment and try again."
)
