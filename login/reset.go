package login

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// Forgot password, the link (ASVS 5.0 6.4.3: a reset must not bypass the
// second factor):
//
//	open ──(first browser binds it)──► second factor ──► new password, twice ──► set; every session and token ends; notice
//
//   - The link works once, for ResetLinkLifetime, and only in the browser
//     that opened it first (its binding cookie), so a link leaked later —
//     from a mail log, a shared screen — is useless elsewhere.
//   - The emailed link is not the second factor: the user proves one they
//     have — a code from their authenticator app, a code texted to the
//     number on file (sent when the link is opened), or a recovery code.
//     An emailed code is not accepted: it would come to the mailbox the link
//     came to, one factor twice. An account whose only second factor is
//     email (or that has none) cannot reset its password here; the page
//     says to ask an administrator (stile user set-password).
//   - Code guesses are counted before they are checked: MaxOTPFailures per
//     link (then the link is dead) and the pair, account and address counts
//     of every code (throttle.go).
//   - The new password passes the policy (length, the breached list) and
//     is set through the account service, which ends every session and
//     refresh token and tells the user.

const (
	msgResetExpired = "This password reset link has expired or was already used. Ask for a new one on the sign-in page."
	msgResetDead    = "Too many wrong codes were entered on this link. Ask for a new one on the sign-in page."
	msgResetBrowser = "This link was opened in another browser first. Ask for a new one on the sign-in page, and open it in this browser."
	msgResetFactor  = "Your account has no second factor that can confirm a password reset (an emailed code would come to the same " +
		"mailbox as this link). Ask your administrator to reset your password."
)

// ResetStep is what the link's page asks for now.
type ResetStep struct {
	Method  string // TOTP, SMS or RECOVERY: what proves the second factor
	Message string
	Proven  bool // the second factor is proven: choose the new password
	Resend  bool // a texted code can be sent again
}

// openReset loads a link that can still be used, binding it to this
// browser if it is the first to open it. A request without the binding
// cookie (GET /login/reset sets it) is refused: it would bind the link to
// nothing.
func (f *Flow) openReset(ctx context.Context, token string, binding []byte) (*storage.PasswordReset, *storage.User, error) {
	if len(binding) == 0 {
		return nil, nil, fail(CodeWrongBrowser, msgLinkNoCookie)
	}
	r, err := f.db.PasswordResetByToken(ctx, f.resetTokenMAC(token))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, nil, fail(CodeExpired, msgResetExpired)
	case err != nil:
		return nil, nil, internal(err)
	case r.UsedAt.Valid || !f.now().Before(r.ExpiresAt):
		return nil, nil, fail(CodeExpired, msgResetExpired)
	case r.Failures >= f.MaxOTPFailures:
		return nil, nil, fail(CodeExpired, msgResetDead)
	}
	if r.BindingHash == nil {
		if r.BindingHash, err = f.db.BindPasswordReset(ctx, r.ID, binding); err != nil {
			return nil, nil, internal(err)
		}
	}
	if !hmac.Equal(r.BindingHash, binding) {
		f.log.Info("password reset refused", "reason", "another browser", "reset", r.ID, "remote", clientip.From(ctx))
		return nil, nil, fail(CodeWrongBrowser, msgResetBrowser)
	}
	u, err := f.db.GetUser(ctx, r.UserID)
	if err != nil {
		return nil, nil, internal(err)
	}
	if u.Disabled {
		return nil, nil, fail(CodeAccountDisabled, msgDisabled)
	}
	return r, u, nil
}

// resetMethod is the second factor the link asks for: the user's texted
// code if they prefer it, else their authenticator app, else a texted
// code, else a recovery code. A recovery code is accepted in place of any.
func (f *Flow) resetMethod(ctx context.Context, u *storage.User) (string, error) {
	has, err := f.factorsOf(ctx, u)
	if err != nil {
		return "", err
	}
	left, err := f.db.RecoveryCodesLeft(ctx, u.ID)
	if err != nil {
		return "", internal(err)
	}
	switch {
	case u.Preferred == MethodSMS && has.SMS:
		return MethodSMS, nil
	case has.TOTP:
		return MethodTOTP, nil
	case has.SMS:
		return MethodSMS, nil
	case left > 0:
		return MethodRecovery, nil
	}
	f.log.Info("password reset refused", "reason", "no second factor but email", "user", u.ID)
	return "", fail(CodeNoSecondFactor, msgResetFactor)
}

// OpenReset opens a link in this browser and says what it asks for. For a
// texted code, the first opening sends it.
func (f *Flow) OpenReset(ctx context.Context, token string, binding []byte) (*ResetStep, error) {
	r, u, err := f.openReset(ctx, token, binding)
	if err != nil {
		return nil, err
	}
	if r.FactorAt.Valid {
		return &ResetStep{Proven: true}, nil
	}
	m, err := f.resetMethod(ctx, u)
	if err != nil {
		return nil, err
	}
	if m == MethodSMS && !r.CodeSentAt.Valid {
		if err := f.sendResetCode(ctx, r, u); err != nil {
			return nil, err
		}
	}
	return f.resetStep(u, m), nil
}

func (f *Flow) resetStep(u *storage.User, m string) *ResetStep {
	s := &ResetStep{Method: m}
	switch m {
	case MethodSMS:
		_, to, _ := f.sender(MethodSMS, u)
		s.Message, s.Resend = "To confirm it is you, enter the 6-digit code we texted to "+mask(MethodSMS, to)+", or a recovery code.", true
	case MethodTOTP:
		s.Message = "To confirm it is you, enter the 6-digit code from your authenticator app, or a recovery code."
	default:
		s.Message = "To confirm it is you, enter one of your recovery codes."
	}
	return s
}

// sendResetCode texts a new code for the link, within the sends' limits
// per user and per number; past them nothing is sent and the link gets a
// code nobody knows, so the page looks the same.
func (f *Flow) sendResetCode(ctx context.Context, r *storage.PasswordReset, u *storage.User) error {
	s, to, ok := f.sender(MethodSMS, u)
	if !ok {
		return fail(CodeNoSecondFactor, msgResetFactor)
	}
	exp := f.now().Add(f.delivery.CodeLifetime)
	limit, _, err := f.sendLimited(ctx, u.ID, MethodSMS, to)
	if err != nil {
		return internal(err)
	}
	if limit != "" {
		f.log.Warn("password reset code not sent: send limit reached", "user", u.ID, "reset", r.ID, "limit", limit)
		return f.db.SetPasswordResetCode(ctx, r.ID, f.resetCodeMAC(r.ID, "unsent:"+newID()), exp)
	}
	code := newCode()
	if err := f.db.SetPasswordResetCode(ctx, r.ID, f.resetCodeMAC(r.ID, code), exp); err != nil {
		return internal(err)
	}
	text := fmt.Sprintf("Your code to reset your password is %s. It works for %d minutes. If you did not ask to reset "+
		"your password, ignore this message.", code, int(f.delivery.CodeLifetime/time.Minute))
	if err := s.Send(ctx, to, "Your password reset code", text); err != nil {
		return internal(fmt.Errorf("send reset code: %w", err))
	}
	f.log.Info("password reset code sent", "user", u.ID, "reset", r.ID)
	return nil
}

func (f *Flow) resetCodeMAC(resetID, code string) []byte {
	return mac(f.keys.OTP, "password-reset-code", resetID, code)
}

// ResendResetCode texts a new code for the link once ResendAfter has
// passed since the last, counted per source address like every resend.
func (f *Flow) ResendResetCode(ctx context.Context, token string, binding []byte) (*ResetStep, error) {
	if err := f.resendLimited(ctx); err != nil {
		return nil, err
	}
	r, u, err := f.openReset(ctx, token, binding)
	if err != nil {
		return nil, err
	}
	if r.FactorAt.Valid {
		return &ResetStep{Proven: true}, nil
	}
	m, err := f.resetMethod(ctx, u)
	if err != nil {
		return nil, err
	}
	if m != MethodSMS {
		return nil, fail(CodeInvalidRequest, "This step sends no code.")
	}
	if r.CodeSentAt.Valid {
		if wait := r.CodeSentAt.Time.Add(f.delivery.ResendAfter).Sub(f.now()); wait > 0 {
			e := fail(CodeThrottled, "A code was just sent. Wait a little before asking for another.")
			e.RetryAfter = wait
			return nil, e
		}
	}
	if err := f.sendResetCode(ctx, r, u); err != nil {
		return nil, err
	}
	return f.resetStep(u, m), nil
}

// ResetVerify checks the second factor on a link. Each code is a guess
// counted before it is checked — on the link (MaxOTPFailures end it) and
// against the account, the pair and the address — so no concurrency gets
// more codes checked than that.
func (f *Flow) ResetVerify(ctx context.Context, token string, binding []byte, otp string) (err error) {
	r, u, err := f.openReset(ctx, token, binding)
	if err != nil {
		return err
	}
	if r.FactorAt.Valid {
		return nil
	}
	m, err := f.resetMethod(ctx, u)
	if err != nil {
		return err
	}
	code := strings.Map(func(c rune) rune {
		if unicode.IsSpace(c) {
			return -1
		}
		return c
	}, otp)
	_, recovery := recoveryForm(code)
	switch {
	case m == MethodRecovery && !recovery:
		return fail(CodeInvalidRequest, "Enter one of your recovery codes.")
	case !recovery && (len(code) != 6 || strings.Trim(code, "0123456789") != ""):
		return fail(CodeInvalidRequest, "Enter the 6-digit code, or a recovery code.")
	}
	if err := f.throttle.hit(ctx, "otp", f.limits.OTPPerAddress, clientip.From(ctx)); err != nil {
		return err
	}
	a := newAudit(EventReset)
	a.user(u)
	a.Detail["step"], a.Detail["method"] = "second_factor", map[bool]string{true: MethodRecovery, false: m}[recovery]
	a.arm() // past the address's rate
	defer func() { f.finish(ctx, a, err) }()
	failures, ok, err := f.db.ReservePasswordResetGuess(ctx, r.ID, f.MaxOTPFailures)
	if err != nil {
		return internal(err)
	}
	if !ok {
		a.refused("no_tries_left")
		return fail(CodeExpired, msgResetDead)
	}
	err = f.guessCode(ctx, u, func() (bool, error) { return f.resetCodeRight(ctx, r, u, m, code, recovery) })
	if err != nil {
		return f.resetGuessFailed(ctx, r, failures, err)
	}
	if err := f.db.ReleasePasswordResetGuess(ctx, r.ID); err != nil {
		return internal(err)
	}
	if err := f.db.ProvePasswordResetFactor(ctx, r.ID); err != nil {
		return fail(CodeExpired, msgResetExpired)
	}
	f.log.Info("password reset: second factor proven", "user", u.ID, "reset", r.ID)
	return nil
}

// resetCodeRight checks code: a recovery code (then spent), else by the
// link's method, a texted code or the authenticator's (its step then used).
func (f *Flow) resetCodeRight(ctx context.Context, r *storage.PasswordReset, u *storage.User, m, code string, recovery bool) (bool, error) {
	switch {
	case recovery:
		return f.useRecovery(ctx, u, code)
	case m == MethodSMS:
		return r.CodeMAC != nil && r.CodeExpiresAt.Valid && f.now().Before(r.CodeExpiresAt.Time) &&
			hmac.Equal(r.CodeMAC, f.resetCodeMAC(r.ID, code)), nil
	}
	return f.checkTOTP(ctx, u.ID, code, f.now())
}

// resetGuessFailed answers a code that was wrong (its guess stays counted,
// with the tries the link has left after failures) or never checked (a
// lock: given back).
func (f *Flow) resetGuessFailed(ctx context.Context, r *storage.PasswordReset, failures int, err error) error {
	e := AsError(err)
	if e.Code != CodeInvalidOTP {
		if rerr := f.db.ReleasePasswordResetGuess(ctx, r.ID); rerr != nil {
			return internal(rerr)
		}
		return e
	}
	f.log.Info("password reset: wrong code", "user", r.UserID, "reset", r.ID, "failures", failures)
	left := f.MaxOTPFailures - failures
	if left <= 0 {
		return fail(CodeExpired, msgResetDead)
	}
	wrong := fail(CodeInvalidOTP, msgInvalidOTP+" "+triesLeft(left))
	wrong.TriesLeft = left
	return wrong
}

// ResetPassword sets the new password on a link whose second factor was
// proven, and spends the link. It returns the sign-in the user came from,
// if it is still open, to go back to.
func (f *Flow) ResetPassword(ctx context.Context, token string, binding []byte, in NewPassword) (arID string, err error) {
	r, u, err := f.openReset(ctx, token, binding)
	if err != nil {
		return "", err
	}
	if !r.FactorAt.Valid {
		return "", fail(CodeInvalidRequest, "Confirm it is you with your second factor first.")
	}
	if err := CheckPasswordPolicy(in.Password); err != nil {
		return "", fail(CodeInvalidRequest, "Choose another password: "+err.Error()+".")
	}
	if in.Password != in.Confirm {
		return "", fail(CodeInvalidRequest, "The two passwords are not the same. Type your new password twice.")
	}
	addr := clientip.From(ctx)
	if err := f.throttle.hit(ctx, "password", f.limits.PasswordPerAddress, addr); err != nil {
		return "", err // bounds the hashing
	}
	a := newAudit(EventReset)
	a.user(u)
	a.Detail["step"] = "password"
	a.arm()
	defer func() { f.finish(ctx, a, err) }()
	hash, err := f.hasher.Hash(in.Password)
	if err != nil {
		return "", AsError(err)
	}
	if err := f.db.UsePasswordReset(ctx, r.ID); err != nil { // once, however many posts race
		if errors.Is(err, storage.ErrNotFound) {
			return "", fail(CodeExpired, msgResetExpired)
		}
		return "", internal(err)
	}
	actor := account.Actor{UserID: u.ID}
	if addr.IsValid() {
		actor.Remote = addr.String()
	}
	// Ends every session and refresh token of the user, and tells them.
	if err := f.accounts.SetPasswordHash(ctx, actor, u.ID, hash); err != nil {
		return "", internal(err)
	}
	f.log.Info("password reset", "user", u.ID, "reset", r.ID)
	if r.AuthRequestID.Valid {
		if ar, err := f.db.GetAuthRequest(ctx, r.AuthRequestID.String); err == nil && !ar.Done && ar.ErrorCode == "" &&
			f.now().Before(ar.ExpiresAt) {
			return ar.ID, nil
		}
	}
	return "", nil
}
