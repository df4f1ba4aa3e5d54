package login

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/stile-id/stile/storage"
)

// Second-factor methods, as the JSON API reports them in authType.
const (
	MethodTOTP       = "TOTP"
	MethodEmail      = "EMAIL"
	MethodSMS        = "SMS"
	MethodRecovery   = "RECOVERY"
	MethodTOTPEnroll = "TOTP_ENROLL"
	MethodNone       = "NONE" // an exempt test account: no second step
)

// A transaction's method is one of TOTP, EMAIL, SMS, TOTP_ENROLL, or
// EMAIL>TOTP_ENROLL / SMS>TOTP_ENROLL: a code to the address or number on
// file, then the enrolment of an authenticator app.
func baseMethod(m string) string { b, _, _ := strings.Cut(m, ">"); return b }

func thenEnroll(m string) bool {
	_, after, ok := strings.Cut(m, ">")
	return ok && after == MethodTOTPEnroll
}

// authType is what the transaction's current step asks for.
func authType(tx *storage.LoginTransaction) string {
	if tx.State == storage.TxEnroll {
		return MethodTOTPEnroll
	}
	return baseMethod(tx.Method)
}

// chooseMethod picks the second step for a user who proved the password:
// their preferred method if it can be used, else their authenticator app,
// else what the enrolment policy (of the user's roles, or else the
// client's) allows a user without a second factor — by default nothing.
func (f *Flow) chooseMethod(ctx context.Context, u *storage.User, c *storage.Client) (string, error) {
	has, err := f.factorsOf(ctx, u)
	if err != nil {
		return "", err
	}
	switch {
	case has.can(u.Preferred):
		return u.Preferred, nil
	case has.TOTP:
		return MethodTOTP, nil
	}
	policy, err := f.db.EnrollmentPolicyFor(ctx, u, c)
	if err != nil {
		return "", internal(err)
	}
	switch policy {
	case storage.EnrollEmail, storage.EnrollEmailThenTOTP:
		if has.Email {
			return then(MethodEmail, policy == storage.EnrollEmailThenTOTP), nil
		}
	case storage.EnrollSMS, storage.EnrollSMSThenTOTP:
		if has.SMS {
			return then(MethodSMS, policy == storage.EnrollSMSThenTOTP), nil
		}
	case storage.EnrollTOTPAfterPassword:
		f.log.Warn("ENROLLING A TOTP SECRET AFTER THE PASSWORD ALONE: the enrolment policy is totp-after-password",
			"user", u.ID, "client", c.ID)
		return MethodTOTPEnroll, nil
	}
	return "", fail(CodeNoSecondFactor, msgNoSecondFactor)
}

// factors is what second factors a user can use now: an authenticator
// app, and where codes can be sent (emailed codes only while the operator
// allows them as a factor).
type factors struct{ TOTP, Email, SMS bool }

func (f *Flow) factorsOf(ctx context.Context, u *storage.User) (factors, error) {
	_, err := f.db.GetTOTP(ctx, u.ID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return factors{}, internal(err)
	}
	_, phone := storage.E164(u.Phone)
	return factors{TOTP: err == nil, Email: f.delivery.EmailFactor && f.delivery.Email != nil && u.Email != "",
		SMS: f.delivery.SMS != nil && phone}, nil
}

// can reports whether method (TOTP, EMAIL or SMS) is one of them.
func (fs factors) can(method string) bool {
	return method == MethodTOTP && fs.TOTP || method == MethodEmail && fs.Email || method == MethodSMS && fs.SMS
}

func then(m string, enroll bool) string {
	if enroll {
		return m + ">" + MethodTOTPEnroll
	}
	return m
}

// startEnrollment gives the transaction a new TOTP secret to confirm and
// returns it for display. It is shown only to a user who proved the
// password and, unless the operator chose otherwise, a code sent to an
// address or number already on file.
func (f *Flow) startEnrollment(ctx context.Context, tx *storage.LoginTransaction, u *storage.User) (*Enrolling, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: f.issuerLabel, AccountName: u.Username, SecretSize: 20,
		Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, internal(err)
	}
	sealed, err := f.sealer.Seal([]byte(key.Secret()), storage.PendingSecretAAD(tx.ID))
	if err != nil {
		return nil, internal(err)
	}
	if err := f.db.StartEnrollment(ctx, tx.ID, sealed); err != nil {
		return nil, fail(CodeExpired, msgExpired)
	}
	return f.enrolling(u, key.Secret(), tx.ID)
}

func (f *Flow) enrolling(u *storage.User, secret, txID string) (*Enrolling, error) {
	e := EnrollmentFor(f.issuerLabel, u.Username, secret)
	png, err := qrPNG(e.URL)
	if err != nil {
		return nil, internal(err)
	}
	return &Enrolling{Username: u.Username, Secret: secret, URL: e.URL, QR: png, TransactionID: txID}, nil
}

// confirmEnrollment checks the new authenticator's first code; right, the
// secret becomes the user's second factor and the login completes.
func (f *Flow) confirmEnrollment(ctx context.Context, tx *storage.LoginTransaction, u *storage.User, code, replaces string, log *slog.Logger) (*Verified, error) {
	secret, err := f.sealer.Open(tx.PendingSecret, storage.PendingSecretAAD(tx.ID))
	if err != nil {
		return nil, internal(err)
	}
	step, ok := matchTOTP(string(secret), code, f.now(), 0)
	if !ok {
		return nil, f.otpFailure(ctx, tx, log)
	}
	if err := f.db.FinishLoginTransaction(ctx, tx.ID); err != nil {
		return nil, fail(CodeExpired, msgExpired)
	}
	if err := f.adoptTOTP(ctx, u, secret, step); err != nil {
		return nil, err
	}
	log.Info("TOTP enrolled during sign-in", "policy_method", tx.Method)
	return f.complete(ctx, tx, u, []string{"pwd", "otp", "mfa"}, replaces, log)
}

// adoptTOTP makes secret the user's authenticator, with step (the code that
// confirmed it) already used, and tells the user.
func (f *Flow) adoptTOTP(ctx context.Context, u *storage.User, secret []byte, step int64) error {
	if err := f.accounts.AdoptTOTP(ctx, u, secret, step); err != nil {
		return internal(err)
	}
	return nil
}

// Resend sends a new code for an EMAIL or SMS transaction, replacing the
// old one, once ResendAfter has passed since the last. Resends are counted
// per source address first (429 past Limits.ResendPerAddress), and the
// send itself is under the per-user and per-destination limits.
func (f *Flow) Resend(ctx context.Context, txID string, binding []byte, door string) (*Challenge, error) {
	if err := f.resendLimited(ctx); err != nil {
		return nil, err
	}
	tx, err := f.openTransaction(ctx, txID, binding, door)
	if err != nil {
		return nil, err
	}
	m := authType(tx)
	if m != MethodEmail && m != MethodSMS {
		return nil, fail(CodeInvalidRequest, "This sign-in step sends no code.")
	}
	if tx.CodeSentAt.Valid {
		if wait := tx.CodeSentAt.Time.Add(f.delivery.ResendAfter).Sub(f.now()); wait > 0 {
			f.count.Throttled("resend_interval")
			return nil, throttled("A code was just sent. Wait a little before asking for another.", wait)
		}
	}
	u, err := f.txUser(ctx, tx)
	if err != nil {
		return nil, err
	}
	if tx.Passwordless { // nobody matched, or the account went: the same answer (passwordless.go)
		if u != nil && (u.Disabled || !f.reaches(baseMethod(tx.Method), u)) {
			u = nil
		}
		f.sendInBackground(ctx, tx, u)
		return f.challenge(tx, u, nil), nil
	}
	if err := f.sendCode(ctx, tx, u); err != nil {
		return nil, err
	}
	return f.challenge(tx, u, nil), nil
}

// txUser is the transaction's user; nil for a passwordless transaction
// that no account matched.
func (f *Flow) txUser(ctx context.Context, tx *storage.LoginTransaction) (*storage.User, error) {
	if tx.UserID == "" {
		return nil, nil
	}
	u, err := f.db.GetUser(ctx, tx.UserID)
	if err != nil {
		return nil, internal(err)
	}
	return u, nil
}

// challenge describes the transaction's current step to the user.
func (f *Flow) challenge(tx *storage.LoginTransaction, u *storage.User, e *Enrolling) *Challenge {
	c := &Challenge{TransactionID: tx.ID, Method: authType(tx), Enroll: e}
	if tx.Passwordless { // the same words whoever it is for (passwordless.go)
		c.Message, c.Passwordless = msgCodeSent, true
		return c
	}
	switch c.Method {
	case MethodEmail, MethodSMS:
		_, to, _ := f.sender(c.Method, u)
		c.Message = "We sent a 6-digit code to " + mask(c.Method, to) + "."
	case MethodTOTPEnroll:
		c.Message = "Scan the QR code with an authenticator app, then enter the 6-digit code it shows."
	default:
		c.Message = "Enter the 6-digit code from your authenticator app."
	}
	return c
}

// Pending describes an open transaction's current step, for its page: the
// code to enter, or the new authenticator to scan (shown again only to the
// browser the transaction belongs to).
func (f *Flow) Pending(ctx context.Context, txID string, binding []byte) (*Challenge, error) {
	tx, err := f.openTransaction(ctx, txID, binding, storage.DoorPages)
	if err != nil {
		return nil, err
	}
	u, err := f.txUser(ctx, tx)
	if err != nil {
		return nil, err
	}
	var e *Enrolling
	if tx.State == storage.TxEnroll {
		secret, err := f.sealer.Open(tx.PendingSecret, storage.PendingSecretAAD(tx.ID))
		if err != nil {
			return nil, internal(err)
		}
		if e, err = f.enrolling(u, string(secret), tx.ID); err != nil {
			return nil, err
		}
	}
	c := f.challenge(tx, u, e)
	c.ClientName = f.clientName(ctx, tx.ClientID) // the transaction's client, not one the page's address names
	return c, nil
}
