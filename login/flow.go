package login

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/stile-id/stile/storage"
)

// Flow is the login state machine that every front end shares: stile's HTML
// pages now, the JSON API and the direct mode later. Handlers only decode
// input, call a step and render what it returns.
//
//	auth request ──Begin──► password ──Authenticate──► transaction (otp) ──Verify──► done ──► callback
//	                              ▲                          │ too many wrong codes
//	                              └──────────── dead ◄───────┘
type Flow struct {
	db          *storage.DB
	hasher      Hasher
	sealer      Sealer
	throttle    *throttle
	now         func() time.Time
	callbackURL func(ctx context.Context, authRequestID string) string
	log         *slog.Logger
	dummyHash   string // verified against when the user is unknown: same cost, same answer

	// MaxOTPFailures is how many wrong codes kill a transaction.
	MaxOTPFailures int
}

// Config is what a Flow needs.
type Config struct {
	DB          *storage.DB
	Hasher      Hasher
	Sealer      Sealer
	Pepper      []byte // HMAC key for throttling unknown usernames
	Now         func() time.Time
	CallbackURL func(ctx context.Context, authRequestID string) string
	Log         *slog.Logger
}

// NewFlow returns a Flow. It computes one hash up front: the stand-in that
// unknown usernames are checked against.
func NewFlow(c Config) (*Flow, error) {
	dummy, err := c.Hasher.Hash(rand.Text())
	if err != nil {
		return nil, err
	}
	return &Flow{
		db: c.DB, hasher: c.Hasher, sealer: c.Sealer, now: c.Now, callbackURL: c.CallbackURL, log: c.Log,
		throttle: &throttle{db: c.DB, pepper: c.Pepper}, dummyHash: dummy, MaxOTPFailures: 5,
	}, nil
}

// Begun is what the hand-off found: either a login to show, or (Redirect
// set) an answer for the client, such as login_required for prompt=none.
type Begun struct {
	AuthRequest *storage.AuthRequest
	LoginHint   string
	Redirect    string
}

// Begin checks an authorization request at the /login hand-off and binds it
// to the browser presenting binding. The first browser to arrive owns it.
func (f *Flow) Begin(ctx context.Context, authRequestID string, binding []byte) (*Begun, error) {
	ar, err := f.openAuthRequest(ctx, authRequestID, binding)
	if err != nil {
		return nil, err
	}
	if ar.Prompt.Contains("none") {
		// No SSO session exists yet, so a silent login cannot succeed.
		if err := f.db.FailAuthRequest(ctx, ar.ID, "login_required"); err != nil {
			return nil, internal(err)
		}
		return &Begun{AuthRequest: ar, Redirect: f.callbackURL(ctx, ar.ID)}, nil
	}
	return &Begun{AuthRequest: ar, LoginHint: ar.LoginHint}, nil
}

// openAuthRequest loads a request that is still waiting for a login and
// binds it to this browser, or says why it cannot continue.
func (f *Flow) openAuthRequest(ctx context.Context, id string, binding []byte) (*storage.AuthRequest, error) {
	if id == "" {
		return nil, fail(CodeInvalidRequest, "The sign-in request is missing. Go back to the application and sign in again.")
	}
	ar, err := f.db.GetAuthRequest(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fail(CodeExpired, msgExpired)
	}
	if err != nil {
		return nil, internal(err)
	}
	if ar.Done || ar.ErrorCode != "" || ar.CallbackAt.Valid || !f.now().Before(ar.ExpiresAt) {
		return nil, fail(CodeExpired, msgExpired)
	}
	bound, err := f.db.BindAuthRequest(ctx, id, binding)
	if err != nil {
		return nil, internal(err)
	}
	if !hmac.Equal(bound, binding) {
		return nil, fail(CodeWrongBrowser, msgWrongBrowser)
	}
	return ar, nil
}

// Credentials is the first step's input.
type Credentials struct {
	AuthRequestID string
	Binding       []byte // MAC of the browser's binding cookie
	Username      string
	Password      string
	RemoteAddr    string // for the log
}

// Challenge is what the second step needs: the transaction and the method
// the server chose for it.
type Challenge struct {
	TransactionID string
	Method        string // TOTP
	Message       string
}

// Method names, as the JSON API will report them in authType.
const MethodTOTP = "TOTP"

// Authenticate checks a username and password. Unknown usernames and wrong
// passwords take the same path — one argon2id computation, one failure
// counted, one answer — so neither the reply nor its timing tells them apart.
func (f *Flow) Authenticate(ctx context.Context, in Credentials) (*Challenge, error) {
	if strings.TrimSpace(in.Username) == "" || in.Password == "" {
		return nil, fail(CodeInvalidRequest, "Enter your username and password.")
	}
	if len(in.Username) > 256 || len(in.Password) > MaxPasswordLength {
		return nil, fail(CodeInvalidRequest, "The username or password is too long.")
	}
	ar, err := f.openAuthRequest(ctx, in.AuthRequestID, in.Binding)
	if err != nil {
		return nil, err
	}
	user, err := f.checkPassword(ctx, in)
	if err != nil {
		return nil, err
	}
	log := f.log.With("user", user.ID, "client", ar.ClientID, "remote", in.RemoteAddr)
	if user.Disabled {
		log.Info("login refused", "step", "password", "reason", "disabled")
		return nil, fail(CodeAccountDisabled, msgDisabled)
	}
	if _, err := f.db.GetTOTP(ctx, user.ID); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			log.Info("login refused", "step", "password", "reason", "no second factor enrolled")
			return nil, fail(CodeNoSecondFactor, msgNoSecondFactor)
		}
		return nil, internal(err)
	}
	tx := &storage.LoginTransaction{
		ID:            newID(),
		AuthRequestID: sql.NullString{String: ar.ID, Valid: true},
		ClientID:      ar.ClientID,
		UserID:        user.ID,
		BindingHash:   in.Binding,
		Method:        MethodTOTP,
		ExpiresAt:     ar.ExpiresAt,
	}
	if err := f.db.CreateLoginTransaction(ctx, tx); err != nil {
		return nil, internal(err)
	}
	log.Info("login step passed", "step", "password", "transaction", tx.ID)
	return &Challenge{TransactionID: tx.ID, Method: MethodTOTP, Message: "Enter the 6-digit code from your authenticator app."}, nil
}

// checkPassword returns the user if the password is theirs. Failures are
// counted; a locked subject is refused before any hashing.
func (f *Flow) checkPassword(ctx context.Context, in Credentials) (*storage.User, error) {
	user, err := f.db.GetUserByUsername(ctx, in.Username)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, internal(err)
	}
	subject, hash := f.throttle.nameSubject(in.Username), f.dummyHash
	if user != nil {
		subject = userSubject(user.ID)
		if user.PasswordHash != "" {
			hash = user.PasswordHash
		}
	}
	now := f.now()
	if err := f.throttle.check(ctx, subject, now); err != nil {
		f.log.Info("login refused", "step", "password", "reason", "throttled", "subject", subject, "remote", in.RemoteAddr)
		return nil, err
	}
	ok, err := f.hasher.Verify(hash, in.Password)
	if err != nil {
		return nil, internal(err)
	}
	if user == nil || user.PasswordHash == "" || !ok {
		if err := f.throttle.failure(ctx, subject, now); err != nil {
			return nil, internal(err)
		}
		f.log.Info("login failed", "step", "password", "subject", subject, "known_user", user != nil, "remote", in.RemoteAddr)
		return nil, fail(CodeInvalidCredentials, msgInvalidCredentials)
	}
	return user, nil
}

// OneTimeCode is the second step's input.
type OneTimeCode struct {
	TransactionID string
	Binding       []byte
	OTP           string
	RemoteAddr    string
}

// Completed is a finished login: the browser goes to RedirectURI, the
// provider's callback, which answers the client.
type Completed struct {
	RedirectURI string
}

// Verify checks the one-time code of an open transaction and, if it is
// right, completes the authorization request. Wrong codes count against
// the transaction (MaxOTPFailures kill it) and against the account.
func (f *Flow) Verify(ctx context.Context, in OneTimeCode) (*Completed, error) {
	code := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, in.OTP)
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return nil, fail(CodeInvalidRequest, "Enter the 6-digit code.")
	}
	tx, err := f.openTransaction(ctx, in.TransactionID, in.Binding)
	if err != nil {
		return nil, err
	}
	log := f.log.With("user", tx.UserID, "client", tx.ClientID, "transaction", tx.ID, "remote", in.RemoteAddr)
	subject := userSubject(tx.UserID)
	now := f.now()
	if err := f.throttle.check(ctx, subject, now); err != nil {
		log.Info("login refused", "step", "otp", "reason", "throttled")
		return nil, err
	}
	ok, err := f.checkTOTP(ctx, tx.UserID, code, now)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, f.otpFailure(ctx, tx, log)
	}
	if err := f.db.FinishLoginTransaction(ctx, tx.ID); err != nil {
		return nil, fail(CodeExpired, msgExpired)
	}
	return f.complete(ctx, tx, now, log)
}

func (f *Flow) openTransaction(ctx context.Context, id string, binding []byte) (*storage.LoginTransaction, error) {
	if id == "" {
		return nil, fail(CodeInvalidRequest, "The sign-in transaction is missing. Sign in again.")
	}
	tx, err := f.db.GetLoginTransaction(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fail(CodeExpired, msgExpired)
	}
	if err != nil {
		return nil, internal(err)
	}
	if !hmac.Equal(tx.BindingHash, binding) {
		return nil, fail(CodeWrongBrowser, msgWrongBrowser)
	}
	switch {
	case tx.State == storage.TxDead:
		return nil, deadError()
	case tx.State != storage.TxOTP || !f.now().Before(tx.ExpiresAt):
		return nil, fail(CodeExpired, msgExpired)
	}
	return tx, nil
}

// checkTOTP reports whether code is the user's current TOTP code and not one
// used before; an accepted step is recorded in the same statement that
// checks it, so a code works once across all instances.
func (f *Flow) checkTOTP(ctx context.Context, userID, code string, now time.Time) (bool, error) {
	enrolled, secret, err := OpenTOTP(ctx, f.db, f.sealer, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, fail(CodeNoSecondFactor, msgNoSecondFactor)
	}
	if err != nil {
		return false, internal(err)
	}
	step, ok := matchTOTP(secret, code, now, enrolled.LastStep)
	if !ok {
		return false, nil
	}
	accepted, err := f.db.AcceptTOTPStep(ctx, userID, step)
	if err != nil {
		return false, internal(err)
	}
	return accepted, nil
}

func (f *Flow) otpFailure(ctx context.Context, tx *storage.LoginTransaction, log *slog.Logger) error {
	if err := f.throttle.failure(ctx, userSubject(tx.UserID), f.now()); err != nil {
		return internal(err)
	}
	after, err := f.db.RecordOTPFailure(ctx, tx.ID, f.MaxOTPFailures)
	if err != nil {
		return internal(err)
	}
	log.Info("login failed", "step", "otp", "failures", after.OTPFailures)
	if after.State == storage.TxDead {
		return deadError()
	}
	return fail(CodeInvalidOTP, msgInvalidOTP)
}

// complete ends a login whose factors all passed: the account's failures
// are forgotten and the authorization request records who signed in.
func (f *Flow) complete(ctx context.Context, tx *storage.LoginTransaction, now time.Time, log *slog.Logger) (*Completed, error) {
	user, err := f.db.GetUser(ctx, tx.UserID)
	if err != nil {
		return nil, internal(err)
	}
	if user.Disabled { // disabled while the code was being typed
		return nil, fail(CodeAccountDisabled, msgDisabled)
	}
	if err := f.throttle.success(ctx, userSubject(tx.UserID)); err != nil {
		return nil, internal(err)
	}
	arID := tx.AuthRequestID.String
	if err := f.db.CompleteAuthRequest(ctx, arID, tx.UserID, now, []string{"pwd", "otp", "mfa"}); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fail(CodeExpired, msgExpired)
		}
		return nil, internal(err)
	}
	log.Info("login succeeded", "amr", "pwd otp mfa")
	return &Completed{RedirectURI: f.callbackURL(ctx, arID)}, nil
}

// deadError ends a transaction killed by wrong codes. Its authorization
// request may still be open: the user can start over with the password,
// which the account's failure counter keeps in check.
func deadError() *Error {
	e := fail(CodeExpired, msgDead)
	e.Restart = true
	return e
}

// ClientName returns the display name of the client an authorization
// request is for, or "" if there is none to show.
func (f *Flow) ClientName(ctx context.Context, authRequestID string) string {
	ar, err := f.db.GetAuthRequest(ctx, authRequestID)
	if err != nil {
		return ""
	}
	c, err := f.db.GetClient(ctx, ar.ClientID)
	if err != nil {
		return ""
	}
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// newID returns an unguessable identifier: 256 random bits, URL-safe.
func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
