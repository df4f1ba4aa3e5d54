package login

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// OneTimeCode is the second step's input.
type OneTimeCode struct {
	TransactionID string
	Binding       []byte // the browser's (or, in direct mode, the client's) binding
	Door          string // storage.DoorPages, DoorAPI or DoorDirect: who is asking (see openTransaction)
	OTP           string
	Replaces      string  // the ID of the browser's current session, if any
	Device        *Device // the browser's device cookie, on stile's pages (nil: none, or another door)
	RemoteAddr    string
}

// Verified is a second step that passed: either the login is complete
// (Next for browser flows; User for the direct mode, which has no
// authorization request), or a new authenticator must now be confirmed
// (Enroll: show it, then verify the app's first code).
type Verified struct {
	Next     *Next
	Enroll   *Enrolling
	User     *storage.User
	AMR      []string
	AuthTime time.Time
}

// Verify checks the code of an open transaction: a TOTP code, a code sent
// by email or SMS, or a recovery code in place of either. Each code is a
// guess reserved before it is checked, in one storage call: a wrong-code
// slot on the transaction (MaxOTPFailures kill it; concurrent guesses
// never evaluate more) and a count against the (account, address) pair,
// the account and the address, as for a password. Which method applies is
// the transaction's, chosen by the server; the caller cannot pick another.
func (f *Flow) Verify(ctx context.Context, in OneTimeCode) (v *Verified, err error) {
	factor := ""
	a := newAudit(EventSecondFactor)
	a.Detail["door"] = in.Door
	ctx = withAudit(ctx, a)
	defer func() {
		f.counted("otp", factor, in.Door, v != nil && v.Enroll == nil, err)
		if v != nil && v.Enroll != nil {
			a.Detail["next"] = MethodTOTPEnroll
		}
		f.finish(ctx, a, err)
	}()
	code := withoutSpaces(in.OTP)
	_, recovery := recoveryForm(code)
	if !recovery && (len(code) != 6 || strings.Trim(code, "0123456789") != "") {
		return nil, fail(CodeInvalidRequest, "Enter the 6-digit code, or a recovery code.")
	}
	tx, err := f.openTransaction(ctx, in.TransactionID, in.Binding, in.Door)
	if err != nil {
		return nil, err
	}
	if factor = authType(tx); recovery {
		factor = MethodRecovery
	}
	a.UserID, a.ActorUser, a.ActorClient, a.Detail["method"] = tx.UserID, tx.UserID, tx.ClientID, factor
	if tx.State == storage.TxEnroll { // the code confirms a new authenticator
		a.Type, a.Detail["method"], a.Detail["via"] = EventFactorEnrolled, MethodTOTP, "sign_in"
	}
	log := f.log.With("user", tx.UserID, "client", tx.ClientID, "transaction", tx.ID, "remote", in.RemoteAddr)
	if err := f.throttle.hit(ctx, "otp", f.limits.OTPPerAddress, clientip.From(ctx)); err != nil {
		log.Info("login refused", "step", "otp", "reason", "address rate")
		return nil, err
	}
	a.arm()                        // past the address's rate: this guess's outcome is recorded
	user, err := f.txUser(ctx, tx) // nil: a passwordless transaction nobody matched
	if err != nil {
		return nil, err
	}
	g := f.codeSubject(ctx, tx, user, in.Device)
	if err := f.reserveCode(ctx, tx, g, log); err != nil {
		return nil, err
	}
	ctx = withGuess(ctx, g)
	if tx.State == storage.TxEnroll {
		return f.confirmEnrollment(ctx, tx, user, code, in.Replaces, log)
	}
	amr, ok, err := f.checkCode(ctx, tx, user, code)
	if err != nil { // not evaluated: give the guess back
		if rerr := f.throttle.release(ctx, g); rerr != nil {
			return nil, rerr
		}
		return nil, err
	}
	if !ok {
		return nil, f.otpFailure(ctx, tx, log)
	}
	if err := f.throttle.release(ctx, g); err != nil { // a right code is no failure
		return nil, err
	}
	if thenEnroll(tx.Method) {
		e, err := f.startEnrollment(ctx, tx, user)
		if err != nil {
			return nil, err
		}
		log.Info("login step passed", "step", "otp", "method", baseMethod(tx.Method), "next", MethodTOTPEnroll)
		return &Verified{Enroll: e}, nil
	}
	if err := f.db.FinishLoginTransaction(ctx, tx.ID); err != nil {
		return nil, fail(CodeExpired, msgExpired)
	}
	return f.complete(ctx, tx, user, amr, in.Replaces, log)
}

// checkCode checks code by the transaction's method, or as a recovery code,
// and returns the amr values (RFC 8176) the method stands for.
func (f *Flow) checkCode(ctx context.Context, tx *storage.LoginTransaction, u *storage.User, code string) ([]string, bool, error) {
	if tx.Passwordless { // the code is the only factor; no recovery code stands in for it
		return passwordlessAMR, u != nil && f.checkSentCode(tx, code), nil
	}
	if _, ok := recoveryForm(code); ok {
		used, err := f.useRecovery(ctx, u, code)
		if err != nil {
			return nil, false, internal(err)
		}
		if used {
			f.log.Warn("signed in with a recovery code", "user", u.ID, "transaction", tx.ID)
		}
		return []string{"pwd", "otp", "mfa"}, used, nil
	}
	switch baseMethod(tx.Method) {
	case MethodTOTP:
		ok, err := f.checkTOTP(ctx, u.ID, code, f.now())
		return []string{"pwd", "otp", "mfa"}, ok, err
	case MethodSMS:
		return []string{"pwd", "sms", "mfa"}, f.checkSentCode(tx, code), nil
	default:
		return []string{"pwd", "otp", "mfa"}, f.checkSentCode(tx, code), nil
	}
}

// codeSubject is the guess a code for tx counts as: against the account
// and the source address — for a passwordless transaction the account as
// the start named it, an HMAC of the identifier when nobody matched — or
// the browser's device cookie for the user instead of the account.
func (f *Flow) codeSubject(ctx context.Context, tx *storage.LoginTransaction, u *storage.User, device *Device) *guess {
	account := tx.Subject
	if account == "" {
		account = f.throttle.account(u, "")
	}
	var d *Device
	if u != nil {
		d = device.of(u.ID)
	}
	return f.throttle.guessFor(account, clientip.From(ctx), d)
}

// openTransaction loads a transaction that still waits for its second
// step, for the door asking: only the door that opened it may go on with
// it (see doors.go).
func (f *Flow) openTransaction(ctx context.Context, id string, binding []byte, door string) (*storage.LoginTransaction, error) {
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
	if err := checkDoor(tx, binding, door); err != nil {
		return nil, err
	}
	switch {
	case tx.State == storage.TxDead:
		return nil, deadError()
	case (tx.State != storage.TxOTP && tx.State != storage.TxEnroll) || !f.now().Before(tx.ExpiresAt):
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

// reserveCode reserves a code guess on the transaction and the guess's
// subjects, and notes on tx how many slots are now used.
func (f *Flow) reserveCode(ctx context.Context, tx *storage.LoginTransaction, g *guess, log *slog.Logger) error {
	r, err := f.db.ReserveOTPAttempt(ctx, tx.ID, f.MaxOTPFailures, f.now().Add(-forgetAfter), g.claims)
	switch {
	case err != nil:
		return internal(err)
	case r.Spent: // every try is used (or in flight), or the transaction just ended
		log.Info("login refused", "step", "otp", "reason", "no tries left")
		auditFrom(ctx).refused("no_tries_left")
		return deadError()
	case !r.Allowed:
		log.Info("login refused", "step", "otp", "reason", "throttled", "subject", g.pair, "device", g.device != "")
		f.count.Throttled("lock")
		return throttled(msgThrottled, r.RetryAfter)
	}
	tx.OTPFailures = r.OTPFailures
	return nil
}

// otpFailure answers a wrong code, whose guess reserveCode already
// counted: with the tries the transaction has left, or, when it has none,
// by ending it.
func (f *Flow) otpFailure(ctx context.Context, tx *storage.LoginTransaction, log *slog.Logger) error {
	log.Info("login failed", "step", "otp", "method", authType(tx), "failures", tx.OTPFailures)
	auditFrom(ctx).refused("wrong_code") // also when it ends the transaction
	left := f.MaxOTPFailures - tx.OTPFailures
	if left <= 0 {
		if err := f.db.KillSpentTransaction(ctx, tx.ID, f.MaxOTPFailures); err != nil {
			return internal(err)
		}
		return deadError()
	}
	e := fail(CodeInvalidOTP, msgInvalidOTP+" "+triesLeft(left))
	e.TriesLeft = left
	return e
}

// triesLeft says how many wrong codes the transaction still takes.
func triesLeft(n int) string {
	if n == 1 {
		return "1 try left."
	}
	return strconv.Itoa(n) + " tries left."
}

// The guess of the code being verified travels in the context to the step
// that completes the sign-in (complete, also reached through
// confirmEnrollment), which clears what it counted against.
type guessKey struct{}

func withGuess(ctx context.Context, g *guess) context.Context {
	return context.WithValue(ctx, guessKey{}, g)
}

func guessFrom(ctx context.Context) *guess { g, _ := ctx.Value(guessKey{}).(*guess); return g }

// complete ends a login whose factors all passed: the account's failures
// are forgotten and, for a browser, a new session starts and the
// authorization request is answered for it. The direct mode, without an
// authorization request, gets the user.
func (f *Flow) complete(ctx context.Context, tx *storage.LoginTransaction, user *storage.User, amr []string, replaces string, log *slog.Logger) (*Verified, error) {
	if user.Disabled { // disabled while the code was being typed
		return nil, fail(CodeAccountDisabled, msgDisabled)
	}
	g := guessFrom(ctx)
	if g == nil {
		g = f.throttle.guessFor(f.throttle.account(user, ""), clientip.From(ctx), nil)
	}
	if err := f.throttle.success(ctx, g); err != nil {
		return nil, err
	}
	if !tx.AuthRequestID.Valid {
		log.Info("login succeeded", "amr", strings.Join(amr, " "), "mode", "direct")
		f.signedIn(ctx, user, tx.ClientID, tx.Door, amr, "")
		return &Verified{User: user, AMR: amr, AuthTime: f.now()}, nil
	}
	ar, err := f.db.GetAuthRequest(ctx, tx.AuthRequestID.String)
	if err != nil {
		return nil, internal(err)
	}
	if ar.Done || ar.ErrorCode != "" || ar.CallbackAt.Valid { // ended meanwhile, e.g. cancelled in another tab: no session for it
		return nil, fail(CodeExpired, msgExpired)
	}
	st, err := f.sessions.start(ctx, user.ID, amr, replaces)
	if err != nil {
		return nil, internal(err)
	}
	f.signedIn(ctx, user, tx.ClientID, tx.Door, amr, st.session.ID)
	log.Info("login succeeded", "amr", strings.Join(amr, " "), "session", st.session.ID)
	next, err := f.afterLogin(ctx, ar, st.session)
	if err != nil {
		return nil, err
	}
	next.SessionCookie, next.SessionID, next.UserID = st.cookie, st.session.ID, user.ID
	return &Verified{Next: next, User: user, AMR: amr, AuthTime: st.session.AuthTime}, nil
}

// deadError ends a transaction killed by wrong codes. Its authorization
// request may still be open: the user can start over with the password,
// which the account's failure counter keeps in check.
func deadError() *Error {
	e := fail(CodeExpired, msgDead)
	e.Restart = true
	return e
}

// codeGuess reserves a code guess that belongs to no transaction (the
// enrolment link's confirmation): the address's code rate, then the
// user's pair, account and address counts.
func (f *Flow) codeGuess(ctx context.Context, u *storage.User) (*guess, error) {
	addr := clientip.From(ctx)
	if err := f.throttle.hit(ctx, "otp", f.limits.OTPPerAddress, addr); err != nil {
		return nil, err
	}
	g := f.throttle.guessFor(f.throttle.account(u, ""), addr, nil)
	if err := f.throttle.reserve(ctx, g, f.now()); err != nil {
		return nil, err
	}
	return g, nil
}
