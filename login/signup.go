package login

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// Self-service sign-up, for clients that switch it on (Client.Signup):
//
//	form ──Signup──► code (emailed) ──SignupVerify──► [username taken: SignupRename] ──► enroll (TOTP) ──SignupConfirm──► account + session
//	                                                                                 └─ the client's policy is email: account + session
//
// Nothing is a user until the address is proven and the second factor set
// up: the sign-up waits in its own table (storage.Signup), bound to the
// browser that started it, and dies with its authorization request.
//
// No enumeration: an address that has an account already gets the same
// answer ("we sent a code"), and its owner a notice instead of a code;
// the sign-up then takes no code at all. A taken username is said only
// after the address is proven, so only the address's owner learns it.

// Event types of sign-up (README, "Audit trail"). The account it makes is
// recorded as user.created with detail via "signup".
const EventSignupStarted = "signup.started"

var errSignupOff = &Error{Code: CodeNotEnabled, Message: "This application does not offer sign-up. Ask its administrator for an account."}

const (
	msgSignupExpired = "This sign-up has expired or is already finished. Go back to the application and start again."
	msgSignupDead    = "Too many wrong codes. Go back to the application and sign up again."
	msgUsernameTaken = "That username is taken. Choose another one."
	msgEmailTaken    = "An account with this email address exists already. Go back to the application and sign in with it."
)

// SignupForm is what the sign-up form sends.
type SignupForm struct {
	AuthRequestID string
	Binding       []byte // the browser's binding; for the JSON API, the loginToken (doors.go)
	Door          string // storage.DoorPages or storage.DoorAPI
	Username      string
	Email         string
	Password      string
	Confirm       string
}

// SignupRef names a pending sign-up and who asks for it: the door and, on
// stile's pages, the browser's binding. A sign-up belongs to the door that
// started it, as a login transaction does (doors.go): on the pages every
// step shows the binding cookie; on the JSON API the signupID only the
// opener learnt, and the browser proves itself where the sign-up becomes a
// session (the ticket, the callback).
type SignupRef struct {
	ID      string
	Binding []byte
	Door    string
}

// SignupStep is where a sign-up stands: the step to show next, or (Next)
// the account exists and the browser goes on to the consent page or the
// callback.
type SignupStep struct {
	SignupID      string
	AuthRequestID string // with Next: the request the account's session answered
	State         string // storage.SignupCode, SignupUsername or SignupEnroll
	Email         string
	Username      string
	Message       string
	Enroll        *Enrolling
	Next          *Next
}

// SignupAllowed reports whether the authorization request's client offers
// sign-up: the password page links to it only then.
func (f *Flow) SignupAllowed(ctx context.Context, authRequestID string) bool {
	ar, err := f.db.GetAuthRequest(ctx, authRequestID)
	if err != nil {
		return false
	}
	c, err := f.db.GetClient(ctx, ar.ClientID)
	return err == nil && c.Signup && f.delivery.Email != nil
}

// SignupOpen checks that an authorization request is open, bound to this
// browser (binding it if nobody has), and that its client offers sign-up.
func (f *Flow) SignupOpen(ctx context.Context, authRequestID string, binding []byte) (*storage.AuthRequest, *storage.Client, error) {
	return f.signupOpen(ctx, authRequestID, binding, storage.DoorPages)
}

func (f *Flow) signupOpen(ctx context.Context, authRequestID string, binding []byte, door string) (*storage.AuthRequest, *storage.Client, error) {
	ar, err := f.openAuthRequest(ctx, authRequestID, binding, door)
	if err != nil {
		return nil, nil, err
	}
	c, err := f.db.GetClient(ctx, ar.ClientID)
	if err != nil {
		return nil, nil, internal(err)
	}
	if !c.Signup {
		return nil, nil, errSignupOff
	}
	if f.delivery.Email == nil {
		f.log.Warn("sign-up refused: it needs email delivery (--smtp-host), and none is configured", "client", c.ID)
		return nil, nil, errSignupOff
	}
	return ar, c, nil
}

// Signup starts a sign-up: it checks the form, hashes the password (one
// argon2id, in the pool), stores the pending sign-up and emails a code
// to the address — or, when the address has an account, a notice to its
// owner, with the same answer.
func (f *Flow) Signup(ctx context.Context, in SignupForm) (*SignupStep, error) {
	if err := checkSignupForm(in); err != nil {
		return nil, err
	}
	ar, c, err := f.signupOpen(ctx, in.AuthRequestID, in.Binding, in.Door)
	if err != nil {
		return nil, err
	}
	addr := clientip.From(ctx)
	// Each sign-up stores a row and sends a mail: bounded per source
	// address. Its hashing counts against the address's password rate.
	if ok, wait, err := f.db.Hit(ctx, "signup:"+clientip.Subject(addr), f.limits.SignupsPerAddress); err != nil {
		return nil, internal(err)
	} else if !ok {
		f.log.Info("sign-up refused", "reason", "address rate", "remote", addr)
		f.count.Throttled("signup")
		return nil, throttled("Too many sign-ups from your network.", wait)
	}
	if err := f.throttle.hit(ctx, "password", f.limits.PasswordPerAddress, addr); err != nil {
		return nil, err
	}
	hash, err := f.hasher.Hash(in.Password)
	if err != nil {
		return nil, AsError(err)
	}
	method, err := f.signupMethod(ctx, c)
	if err != nil {
		return nil, err
	}
	s := &storage.Signup{ID: newID(), AuthRequestID: ar.ID, ClientID: c.ID, Door: in.Door, BindingHash: ar.BindingHash,
		Username: strings.TrimSpace(in.Username), Email: strings.TrimSpace(in.Email), PasswordHash: hash, Method: method,
		ExpiresAt: ar.ExpiresAt}
	if err := f.db.CreateSignup(ctx, s); err != nil {
		return nil, internal(err)
	}
	f.record(ctx, &storage.Event{Type: EventSignupStarted, ActorClient: c.ID, Outcome: storage.Success,
		Detail: storage.Attributes{"method": method}})
	if err := f.sendSignupCode(ctx, s); err != nil {
		return nil, err
	}
	f.log.Info("sign-up started", "signup", s.ID, "client", c.ID, "method", method, "remote", addr)
	return f.signupStep(s, nil), nil
}

// checkSignupForm refuses what can never become an account, before any
// work: the username as the store would, the address, the password policy.
// A deployment that signs in by email address would take the username
// from the address here.
func checkSignupForm(in SignupForm) error {
	name, email := strings.TrimSpace(in.Username), strings.TrimSpace(in.Email)
	if name == "" || email == "" || in.Password == "" {
		return fail(CodeInvalidRequest, "Enter a username, your email address and a password.")
	}
	if err := checkUsername(name); err != nil {
		return err
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		return fail(CodeInvalidRequest, "Enter your email address, like name@example.com.")
	}
	if err := CheckPasswordPolicy(in.Password); err != nil {
		return fail(CodeInvalidRequest, "Choose another password: "+err.Error()+".")
	}
	if in.Password != in.Confirm {
		return fail(CodeInvalidRequest, "The two passwords are not the same. Type your new password twice.")
	}
	return nil
}

// checkUsername refuses a username the store would (storage.User.validate).
func checkUsername(name string) error {
	if name == "" || utf8.RuneCountInString(name) > 128 || strings.ContainsAny(name, " \t\r\n:") {
		return fail(CodeInvalidRequest, "Choose a username of at most 128 characters, without spaces or ':'.")
	}
	return nil
}

// signupMethod is the second factor a new account of client c gets, by the
// enrolment policy its default roles (or else the client) have: a policy of
// email codes makes the proven address the factor, if emailed codes are
// allowed as one; anything else an authenticator app, set up now. (An SMS
// policy also gets the app: a sign-up has no proven number.)
func (f *Flow) signupMethod(ctx context.Context, c *storage.Client) (string, error) {
	policy, err := f.db.EnrollmentPolicyFor(ctx, &storage.User{Roles: c.SignupRoles}, c)
	if err != nil {
		return "", internal(err)
	}
	if policy == storage.EnrollEmail && f.delivery.EmailFactor {
		return MethodEmail, nil
	}
	return MethodTOTP, nil
}

// signupCodeMAC is how a sign-up's code is stored: keyed, bound to the
// sign-up.
func (f *Flow) signupCodeMAC(id, code string) []byte { return mac(f.keys.OTP, "signup", id, code) }

// sendSignupCode emails a new code for the sign-up — or, when the address
// has an account, tells its owner instead and stores a code nobody knows —
// unless the address has had its share of mail (Limits.SendsPerMinute,
// SendsPerHour, counted with the sign-in's codes to the same address):
// then nothing is sent. Every path stores a code and answers the same.
func (f *Flow) sendSignupCode(ctx context.Context, s *storage.Signup) error {
	codeMAC, exp := f.signupCodeMAC(s.ID, "unsent:"+newID()), f.now().Add(f.delivery.CodeLifetime)
	var code, subject, text string
	to := s.Email
	limit, _, err := f.destinationLimited(ctx, s.Email)
	if err != nil {
		return internal(err)
	}
	owner, err := f.db.GetUserByEmail(ctx, s.Email)
	switch {
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return internal(err)
	case limit != "":
		f.log.Warn("sign-up mail not sent: send limit reached", "signup", s.ID, "limit", limit)
	case owner != nil:
		to = owner.Email // the address on file, however it was typed here
		subject = "Someone tried to sign up with your address"
		text = fmt.Sprintf("Someone just tried to create an account at %s with this email address. You have an account "+
			"already: if it was you, sign in, or reset your password if you forgot it. If it was not you, you can "+
			"ignore this message; no account was created.", f.issuer)
		f.log.Info("sign-up with the address of an account: its owner is told, no code is sent", "signup", s.ID, "user", owner.ID)
	default:
		code = newCode()
		codeMAC = f.signupCodeMAC(s.ID, code)
		subject = "Your code to create your account"
		text = fmt.Sprintf("Your code to create your account is %s. It works for %d minutes. If you did not just sign up, "+
			"ignore this message; no account is created without the code.", code, int(f.delivery.CodeLifetime/time.Minute))
	}
	if err := f.db.SetSignupCode(ctx, s.ID, codeMAC, exp); err != nil {
		return fail(CodeExpired, msgSignupExpired)
	}
	if subject == "" {
		return nil
	}
	if err := f.delivery.Email.Send(ctx, to, subject, text); err != nil {
		return internal(fmt.Errorf("send sign-up mail: %w", err))
	}
	return nil
}

// destinationLimited counts one mail to an address against its windows,
// shared with the sign-in's codes (sendLimited), and names the first limit
// it exceeds ("" if none).
func (f *Flow) destinationLimited(ctx context.Context, to string) (string, time.Duration, error) {
	dest := "send:to:" + f.destinationKey(MethodEmail, to)
	for _, c := range []struct {
		name string
		rate storage.Rate
	}{{"per destination per minute", f.limits.SendsPerMinute}, {"per destination per hour", f.limits.SendsPerHour}} {
		ok, wait, err := f.db.Hit(ctx, dest+"/"+c.rate.Per.String(), c.rate)
		if err != nil {
			return "", 0, fmt.Errorf("send limit: %w", err)
		}
		if !ok {
			return c.name, wait, nil
		}
	}
	return "", 0, nil
}

// openSignup loads a sign-up for the door and browser asking, in one of
// the states given.
func (f *Flow) openSignup(ctx context.Context, ref SignupRef, states ...string) (*storage.Signup, error) {
	if ref.ID == "" {
		return nil, fail(CodeInvalidRequest, "The sign-up is missing. Go back to the application and start again.")
	}
	s, err := f.db.GetSignup(ctx, ref.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fail(CodeExpired, msgSignupExpired)
	}
	if err != nil {
		return nil, internal(err)
	}
	if s.Door != ref.Door {
		return nil, errOtherDoor
	}
	// On the pages, an empty binding never matches.
	if ref.Door != storage.DoorAPI && (len(ref.Binding) == 0 || !hmac.Equal(s.BindingHash, ref.Binding)) {
		f.log.Info("sign-up refused", "reason", "another browser", "signup", s.ID, "remote", clientip.From(ctx))
		return nil, fail(CodeWrongBrowser, "This sign-up was started in another browser. Go back to the application and start again from this one.")
	}
	switch {
	case s.State == storage.SignupDead:
		return nil, fail(CodeExpired, msgSignupDead)
	case !f.now().Before(s.ExpiresAt):
		return nil, fail(CodeExpired, msgSignupExpired)
	}
	for _, st := range states {
		if s.State == st {
			return s, nil
		}
	}
	return nil, fail(CodeExpired, msgSignupExpired)
}

// SignupResend emails a new code, once ResendAfter has passed since the
// last, under the same limits as a sign-in's resend.
func (f *Flow) SignupResend(ctx context.Context, ref SignupRef) (*SignupStep, error) {
	if err := f.resendLimited(ctx); err != nil {
		return nil, err
	}
	s, err := f.openSignup(ctx, ref, storage.SignupCode)
	if err != nil {
		return nil, err
	}
	if s.CodeSentAt.Valid {
		if wait := s.CodeSentAt.Time.Add(f.delivery.ResendAfter).Sub(f.now()); wait > 0 {
			f.count.Throttled("resend_interval")
			e := fail(CodeThrottled, "A code was just sent. Wait a little before asking for another.")
			e.RetryAfter = wait
			return nil, e
		}
	}
	if err := f.sendSignupCode(ctx, s); err != nil {
		return nil, err
	}
	return f.signupStep(s, nil), nil
}

// SignupPending describes a sign-up's current step, for its page; the new
// authenticator is shown again only to the browser it belongs to.
func (f *Flow) SignupPending(ctx context.Context, ref SignupRef) (*SignupStep, error) {
	s, err := f.openSignup(ctx, ref, storage.SignupCode, storage.SignupUsername, storage.SignupEnroll)
	if err != nil {
		return nil, err
	}
	var e *Enrolling
	if s.State == storage.SignupEnroll {
		secret, err := f.sealer.Open(s.PendingSecret, storage.SignupSecretAAD(s.ID))
		if err != nil {
			return nil, internal(err)
		}
		if e, err = f.enrolling(&storage.User{Username: s.Username}, string(secret), ""); err != nil {
			return nil, err
		}
	}
	return f.signupStep(s, e), nil
}

func (f *Flow) signupStep(s *storage.Signup, e *Enrolling) *SignupStep {
	st := &SignupStep{SignupID: s.ID, State: s.State, Email: s.Email, Username: s.Username, Enroll: e}
	switch s.State {
	case storage.SignupCode:
		st.Message = "We sent a 6-digit code to " + s.Email + ". Enter it to confirm your address."
	case storage.SignupUsername:
		st.Message = "Your address is confirmed. " + msgUsernameTaken
	case storage.SignupEnroll:
		st.Message = "Your address is confirmed. Now set up your second factor: scan the QR code with an authenticator app, " +
			"then enter the 6-digit code it shows."
	}
	return st
}
