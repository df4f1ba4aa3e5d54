package login

import (
	"context"
	"crypto/hmac"
	"errors"
	"strings"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// SignupVerify checks the emailed code. Each code is a guess reserved
// before it is checked: a slot on the sign-up (MaxOTPFailures kill it;
// concurrent guesses never evaluate more) after the address's code rate.
// Right, the address is proven; then a taken username is said, or the
// second factor is set up (TOTP), or, when the proven address is the
// factor, the account is made.
func (f *Flow) SignupVerify(ctx context.Context, ref SignupRef, code, replaces string) (*SignupStep, error) {
	code = strings.Join(strings.Fields(code), "")
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return nil, fail(CodeInvalidRequest, "Enter the 6-digit code we emailed you.")
	}
	s, err := f.openSignup(ctx, ref, storage.SignupCode)
	if err != nil {
		return nil, err
	}
	if err := f.signupGuess(ctx, s); err != nil {
		return nil, err
	}
	ok := s.CodeMAC != nil && s.CodeExpiresAt.Valid && f.now().Before(s.CodeExpiresAt.Time) &&
		hmac.Equal(s.CodeMAC, f.signupCodeMAC(s.ID, code))
	if !ok {
		return nil, f.signupFailure(ctx, s)
	}
	if err := f.db.ReleaseSignupAttempt(ctx, s.ID); err != nil { // a right code is no failure
		return nil, internal(err)
	}
	f.log.Info("sign-up address proven", "signup", s.ID)
	taken, err := f.usernameTaken(ctx, s.Username)
	if err != nil {
		return nil, err
	}
	if taken {
		if err := f.db.MoveSignup(ctx, s.ID, storage.SignupCode, storage.SignupUsername, nil); err != nil {
			return nil, fail(CodeExpired, msgSignupExpired)
		}
		s.State = storage.SignupUsername
		return f.signupStep(s, nil), nil
	}
	return f.afterAddress(ctx, s, replaces)
}

// SignupRename takes another username for a sign-up whose address is
// proven and whose username was taken. Only the address's owner gets
// here; each try counts against the address's password rate.
func (f *Flow) SignupRename(ctx context.Context, ref SignupRef, username, replaces string) (*SignupStep, error) {
	s, err := f.openSignup(ctx, ref, storage.SignupUsername)
	if err != nil {
		return nil, err
	}
	username = strings.TrimSpace(username)
	if err := checkUsername(username); err != nil {
		return nil, err
	}
	if err := f.throttle.hit(ctx, "password", f.limits.PasswordPerAddress, clientip.From(ctx)); err != nil {
		return nil, err
	}
	taken, err := f.usernameTaken(ctx, username)
	if err != nil {
		return nil, err
	}
	if taken {
		return nil, fail(CodeInvalidRequest, msgUsernameTaken)
	}
	if err := f.db.RenameSignup(ctx, s.ID, username); err != nil {
		return nil, fail(CodeExpired, msgSignupExpired)
	}
	s.Username = username
	return f.afterAddress(ctx, s, replaces)
}

func (f *Flow) usernameTaken(ctx context.Context, name string) (bool, error) {
	_, err := f.db.GetUserByUsername(ctx, name)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, internal(err)
	}
	return true, nil
}

// afterAddress goes on once the address is proven and the username free:
// to a new authenticator to confirm, or, when the proven address is the
// account's factor, straight to the account.
func (f *Flow) afterAddress(ctx context.Context, s *storage.Signup, replaces string) (*SignupStep, error) {
	if s.Method == MethodEmail {
		return f.createAccount(ctx, s, "", 0, replaces)
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: f.issuerLabel, AccountName: s.Username, SecretSize: 20,
		Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, internal(err)
	}
	sealed, err := f.sealer.Seal([]byte(key.Secret()), storage.SignupSecretAAD(s.ID))
	if err != nil {
		return nil, internal(err)
	}
	if err := f.db.MoveSignup(ctx, s.ID, s.State, storage.SignupEnroll, sealed); err != nil {
		return nil, fail(CodeExpired, msgSignupExpired)
	}
	s.State, s.PendingSecret = storage.SignupEnroll, sealed
	e, err := f.enrolling(&storage.User{Username: s.Username}, key.Secret(), "")
	if err != nil {
		return nil, err
	}
	return f.signupStep(s, e), nil
}

// SignupConfirm checks the new authenticator's first code, a guess
// reserved like the emailed code's; right, the account is made with it.
func (f *Flow) SignupConfirm(ctx context.Context, ref SignupRef, code, replaces string) (*SignupStep, error) {
	code = strings.Join(strings.Fields(code), "")
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return nil, fail(CodeInvalidRequest, "Enter the 6-digit code your authenticator app shows.")
	}
	s, err := f.openSignup(ctx, ref, storage.SignupEnroll)
	if err != nil {
		return nil, err
	}
	if err := f.signupGuess(ctx, s); err != nil {
		return nil, err
	}
	secret, err := f.sealer.Open(s.PendingSecret, storage.SignupSecretAAD(s.ID))
	if err != nil {
		return nil, internal(err)
	}
	step, ok := matchTOTP(string(secret), code, f.now(), 0)
	if !ok {
		return nil, f.signupFailure(ctx, s)
	}
	return f.createAccount(ctx, s, string(secret), step, replaces)
}

// signupGuess reserves a code guess: the address's code rate, then a slot
// on the sign-up.
func (f *Flow) signupGuess(ctx context.Context, s *storage.Signup) error {
	if err := f.throttle.hit(ctx, "otp", f.limits.OTPPerAddress, clientip.From(ctx)); err != nil {
		f.log.Info("sign-up refused", "step", s.State, "reason", "address rate", "signup", s.ID)
		return err
	}
	n, ok, err := f.db.ReserveSignupAttempt(ctx, s.ID, s.State, f.MaxOTPFailures)
	if err != nil {
		return internal(err)
	}
	if !ok { // every try is used (or in flight), or another request moved the sign-up on
		if err := f.db.KillSignup(ctx, s.ID, f.MaxOTPFailures); err != nil {
			return internal(err)
		}
		now, err := f.db.GetSignup(ctx, s.ID)
		if err == nil && now.State != storage.SignupDead {
			return fail(CodeExpired, msgSignupExpired)
		}
		f.log.Info("sign-up refused", "step", s.State, "reason", "no tries left", "signup", s.ID)
		return fail(CodeExpired, msgSignupDead)
	}
	s.Failures = n
	return nil
}

// signupFailure answers a wrong code, whose guess signupGuess counted.
func (f *Flow) signupFailure(ctx context.Context, s *storage.Signup) error {
	f.log.Info("sign-up code wrong", "step", s.State, "signup", s.ID, "failures", s.Failures)
	left := f.MaxOTPFailures - s.Failures
	if left <= 0 {
		if err := f.db.KillSignup(ctx, s.ID, f.MaxOTPFailures); err != nil {
			return internal(err)
		}
		return fail(CodeExpired, msgSignupDead)
	}
	e := fail(CodeInvalidOTP, msgInvalidOTP+" "+triesLeft(left))
	e.TriesLeft = left
	return e
}

// createAccount turns a proven sign-up into an account, through the
// account service, with the client's default roles and attributes and the
// confirmed authenticator (if any); then a session starts and the
// authorization request is answered for it. One request wins the sign-up
// (state creating); a username taken meanwhile sends it back to choose.
func (f *Flow) createAccount(ctx context.Context, s *storage.Signup, secret string, step int64, replaces string) (*SignupStep, error) {
	from := s.State
	if err := f.db.MoveSignup(ctx, s.ID, from, storage.SignupCreating, s.PendingSecret); err != nil {
		return nil, fail(CodeExpired, msgSignupExpired)
	}
	// The request must still be open and bound to the sign-up's browser
	// (whichever door it came through, its binding is the browser's).
	ar, err := f.openAuthRequest(ctx, s.AuthRequestID, s.BindingHash, storage.DoorPages)
	if err != nil {
		return nil, err
	}
	c, err := f.db.GetClient(ctx, s.ClientID)
	if err != nil {
		return nil, internal(err)
	}
	if !c.Signup { // switched off since the sign-up started
		return nil, errSignupOff
	}
	actor := account.Actor{ClientID: c.ID, Remote: clientip.From(ctx).String()}
	created, err := f.accounts.Create(ctx, actor, account.NewUser{Username: s.Username, Email: s.Email,
		Roles: c.SignupRoles, Attributes: c.SignupAttributes, PasswordHash: s.PasswordHash, SkipEnrollLink: true,
		TOTPSecret: secret, TOTPStep: step, Via: "signup"})
	var fe *account.FieldError
	switch {
	case errors.As(err, &fe) && errors.Is(err, account.ErrConflict) && fe.Field == "username":
		if err := f.db.MoveSignup(ctx, s.ID, storage.SignupCreating, storage.SignupUsername, nil); err != nil {
			return nil, fail(CodeExpired, msgSignupExpired)
		}
		s.State = storage.SignupUsername
		return f.signupStep(s, nil), nil
	case errors.As(err, &fe) && errors.Is(err, account.ErrConflict):
		f.db.DeleteSignup(ctx, s.ID)
		return nil, fail(CodeExpired, msgEmailTaken)
	case err != nil:
		if merr := f.db.MoveSignup(ctx, s.ID, storage.SignupCreating, from, s.PendingSecret); merr != nil {
			f.log.Error("sign-up not reopened after a failure", "signup", s.ID, "err", merr)
		}
		return nil, internal(err)
	}
	if err := f.db.DeleteSignup(ctx, s.ID); err != nil {
		f.log.Error("sign-up row not deleted; cleanup will", "signup", s.ID, "err", err)
	}
	u := created.User
	amr := []string{"pwd", "otp", "mfa"}
	st, err := f.sessions.start(ctx, u.ID, amr, replaces)
	if err != nil {
		return nil, internal(err)
	}
	f.signedIn(ctx, u, c.ID, s.Door, amr, st.session.ID)
	f.log.Info("sign-up complete: account created", "user", u.ID, "client", c.ID, "method", s.Method, "session", st.session.ID)
	next, err := f.afterLogin(ctx, ar, st.session)
	if err != nil {
		return nil, err
	}
	next.SessionCookie, next.SessionID, next.UserID = st.cookie, st.session.ID, u.ID
	return &SignupStep{SignupID: s.ID, AuthRequestID: ar.ID, Next: next}, nil
}
