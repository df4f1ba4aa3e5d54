package login

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"

	"github.com/stile-id/stile/storage"
)

// Credentials is the first step's input.
type Credentials struct {
	AuthRequestID string
	Binding       []byte // MAC of the browser's binding cookie
	Username      string
	Password      string
	Replaces      string // the ID of the browser's current session, if any
	RemoteAddr    string // for the log
}

// Challenge is what the second step needs: the transaction and the method
// the server chose for it. For an account exempt from the second factor
// the login is already complete, and Next says where to go.
type Challenge struct {
	TransactionID string
	Method        string // TOTP
	Message       string
	Next          *Next
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
	if user.OTPExempt {
		return f.exempt(ctx, ar, user, in.Replaces, log)
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

// exempt completes the login of an account an operator exempted from the
// second factor (a dedicated conformance-test account). The ID token says
// so: amr is pwd alone, without mfa. Every use is logged as a warning.
func (f *Flow) exempt(ctx context.Context, ar *storage.AuthRequest, user *storage.User, replaces string, log *slog.Logger) (*Challenge, error) {
	if err := f.throttle.success(ctx, userSubject(user.ID)); err != nil {
		return nil, internal(err)
	}
	st, err := f.sessions.start(ctx, user.ID, []string{"pwd"}, replaces)
	if err != nil {
		return nil, internal(err)
	}
	log.Warn("login succeeded WITHOUT a second factor: the account is exempt (stile user update --otp-exempt)",
		"session", st.session.ID)
	next, err := f.afterLogin(ctx, ar, st.session)
	if err != nil {
		return nil, err
	}
	next.SessionCookie = st.cookie
	return &Challenge{Next: next}, nil
}
