package login

import (
	"context"
	"crypto/hmac"
	"errors"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/stile-id/stile/storage"
)

// OneTimeCode is the second step's input.
type OneTimeCode struct {
	TransactionID string
	Binding       []byte
	OTP           string
	Replaces      string // the ID of the browser's current session, if any
	RemoteAddr    string
}

// Verify checks the one-time code of an open transaction. If it is right,
// a new SSO session starts (replacing the browser's previous one, whose ID
// is in Replaces) and the authorization request is answered. Wrong codes
// count against the transaction (MaxOTPFailures kill it) and against the
// account.
func (f *Flow) Verify(ctx context.Context, in OneTimeCode) (*Next, error) {
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
	return f.complete(ctx, tx, in.Replaces, log)
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
// are forgotten, a new session starts and the authorization request is
// answered for it.
func (f *Flow) complete(ctx context.Context, tx *storage.LoginTransaction, replaces string, log *slog.Logger) (*Next, error) {
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
	ar, err := f.db.GetAuthRequest(ctx, tx.AuthRequestID.String)
	if err != nil {
		return nil, internal(err)
	}
	st, err := f.sessions.start(ctx, user.ID, []string{"pwd", "otp", "mfa"}, replaces)
	if err != nil {
		return nil, internal(err)
	}
	log.Info("login succeeded", "amr", "pwd otp mfa", "session", st.session.ID)
	next, err := f.afterLogin(ctx, ar, st.session)
	if err != nil {
		return nil, err
	}
	next.SessionCookie = st.cookie
	return next, nil
}

// deadError ends a transaction killed by wrong codes. Its authorization
// request may still be open: the user can start over with the password,
// which the account's failure counter keeps in check.
func deadError() *Error {
	e := fail(CodeExpired, msgDead)
	e.Restart = true
	return e
}
