package login

import (
	"context"
	"crypto/hmac"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// Forgot password, the request (ASVS 5.0 6.3.8, 6.4.3): a user names their
// account — by username, or by the email address on file — and a
// single-use link is mailed to that address. The answer is the same
// whether the account exists or not, and so is the work done before it:
// the lookup, the link and the mail happen after the answer, in the
// background (forgotQueue), so neither the reply nor its timing tells a
// caller which names exist. What follows the link is in reset.go.
//
// What an anonymous caller can make stile do is bounded: requests per
// source address (Limits.ForgotPerAddress, 429 beyond it, the same for
// every name); mails per user and per address through the code sends'
// limits (Limits.SendsPerMinute, SendsPerHour), past which nothing is
// sent, nor stored (so they bound the links a user can have); and a fixed
// number of requests in progress, past which a request is dropped (logged).

// Audit events of forgot password (public names: README, "Audit trail").
const (
	EventResetRequested = "password.reset_requested" // a link asked for: sent, or why not (unknown_account, no_email, send_limit, …)
	EventReset          = "password.reset"           // a step on the link: detail step second_factor or password
)

// ResetPath is where a reset link points: stile's own page, for every
// client (the link is bound to the browser that opens it, which only a
// page of stile's can do).
const ResetPath = "/login/reset"

// ResetLinkLifetime is how long a reset link works.
const ResetLinkLifetime = 30 * time.Minute

// MsgForgotSent is the one answer to every accepted request.
const MsgForgotSent = "If an account matches, we sent a link to its email address to choose a new password. " +
	"The link works for 30 minutes. Check your inbox, and your spam folder."

// ForgotRequest is a request for a reset link.
type ForgotRequest struct {
	AuthRequestID string // the sign-in the user came from: required on the JSON API, optional on the pages
	Binding       []byte // the pages: the browser's binding; the JSON API: the loginToken
	Door          string // storage.DoorPages or storage.DoorAPI
	Identifier    string // a username or an email address
}

// Forgot accepts a request for a reset link and answers MsgForgotSent; the
// link is made and sent in the background, for a real account with an
// email address only. Its refusals (a malformed identifier, the address's
// rate, the JSON API's door) never depend on the identifier's account.
func (f *Flow) Forgot(ctx context.Context, in ForgotRequest) (string, error) {
	id := strings.TrimSpace(in.Identifier)
	if id == "" || len(id) > 256 {
		return "", fail(CodeInvalidRequest, "Enter your username or email address.")
	}
	if err := f.throttle.hit(ctx, "forgot", f.limits.ForgotPerAddress, clientip.From(ctx)); err != nil {
		f.log.Info("password reset refused", "reason", "address rate", "door", in.Door)
		return "", throttledAs(err, "Too many password resets were asked for from your network.")
	}
	arID, err := f.forgotRequest(ctx, in)
	if err != nil {
		return "", err
	}
	job := resetJob{identifier: id, authRequestID: arID, door: in.Door}
	// The request's values (its source address, for the trail) without its
	// cancellation: the work goes on after the answer is sent.
	bg := context.WithoutCancel(ctx)
	if !f.forgot.start(func() {
		ctx, cancel := context.WithTimeout(bg, time.Minute)
		defer cancel()
		f.sendResetLink(ctx, job)
	}) {
		f.log.Warn("password reset dropped: too many in progress", "door", in.Door, "remote", clientip.From(ctx))
	}
	return MsgForgotSent, nil
}

// throttledAs rewords a throttled error, keeping its Retry-After.
func throttledAs(err error, msg string) error {
	e := AsError(err)
	if e.Code != CodeThrottled {
		return e
	}
	return throttled(msg, e.RetryAfter)
}

// forgotRequest checks the door and returns the sign-in to go back to, if
// any. The JSON API must show the request's loginToken, as its first call
// does (doors.go). The pages carry it only to offer the way back: one that
// is over, or not this browser's, is dropped, not an error.
func (f *Flow) forgotRequest(ctx context.Context, in ForgotRequest) (string, error) {
	switch in.Door {
	case storage.DoorAPI:
		ar, err := f.openAuthRequest(ctx, in.AuthRequestID, in.Binding, storage.DoorAPI)
		if err != nil {
			return "", err
		}
		return ar.ID, nil
	case storage.DoorPages:
		if in.AuthRequestID == "" || len(in.Binding) == 0 {
			return "", nil
		}
		ar, err := f.db.GetAuthRequest(ctx, in.AuthRequestID)
		if err != nil || !hmac.Equal(ar.BindingHash, in.Binding) || ar.Done || !f.now().Before(ar.ExpiresAt) {
			return "", nil
		}
		return ar.ID, nil
	}
	return "", internal(fmt.Errorf("forgot password: no door %q", in.Door))
}

// resetJob is a request accepted, to be carried out in the background.
type resetJob struct {
	identifier, authRequestID, door string
}

// Why a request sent no link, in the trail.
var (
	errResetUnknown  = errors.New("unknown_account")
	errResetDisabled = errors.New("disabled")
	errResetNoEmail  = errors.New("no_email")
	errResetLimited  = errors.New("send_limit")
)

// sendResetLink makes and mails a link for the account the request names,
// if it has an email address and its sends are within their limits, and
// records the outcome either way (no identifier is stored: people type
// passwords into such fields).
func (f *Flow) sendResetLink(ctx context.Context, job resetJob) {
	a := newAudit(EventResetRequested)
	a.Detail["door"] = job.door
	a.arm() // past the address's rate, which bounds the trail
	u, err := f.resetAccount(ctx, job.identifier)
	a.user(u)
	if err == nil {
		err = f.mailResetLink(ctx, u, job)
	}
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			a.refused(err.Error())
		}
		f.log.Info("password reset link not sent", "user", userID(u), "reason", err, "door", job.door)
	}
	f.finish(ctx, a, err)
}

func userID(u *storage.User) string {
	if u == nil {
		return ""
	}
	return u.ID
}

// resetAccount finds the account a request names: by the identifiers the
// deployment signs in with, else by username, else by the email address
// on file.
func (f *Flow) resetAccount(ctx context.Context, identifier string) (*storage.User, error) {
	// What the deployment signs in with first (identifier.go); a user who
	// remembers only their username, or only their address, is helped too.
	u, _, err := f.findAccount(ctx, identifier)
	if err == nil && u == nil {
		u, err = f.db.GetUserByUsername(ctx, identifier)
	}
	if errors.Is(err, storage.ErrNotFound) && strings.Contains(identifier, "@") {
		u, err = f.db.GetUserByEmail(ctx, identifier)
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, errResetUnknown
	case err != nil:
		return nil, internal(err)
	}
	return u, nil
}

// mailResetLink stores a new link for u and mails
// it, within the sends' limits per user and per address.
func (f *Flow) mailResetLink(ctx context.Context, u *storage.User, job resetJob) error {
	switch {
	case u.Disabled:
		return errResetDisabled
	case u.Email == "" || f.delivery.Email == nil:
		return errResetNoEmail
	}
	limit, wait, err := f.sendLimited(ctx, u.ID, MethodEmail, u.Email)
	if err != nil {
		return internal(err)
	}
	if limit != "" {
		f.log.Warn("password reset link not sent: send limit reached", "user", u.ID, "limit", limit, "retry_after", wait.Round(time.Second))
		return errResetLimited
	}
	token := newID()
	r := &storage.PasswordReset{ID: uuid.NewString(), TokenMAC: f.resetTokenMAC(token), UserID: u.ID,
		AuthRequestID: sql.NullString{String: job.authRequestID, Valid: job.authRequestID != ""},
		ExpiresAt:     f.now().Add(ResetLinkLifetime)}
	if err := f.db.CreatePasswordReset(ctx, r); err != nil {
		return internal(err)
	}
	link := f.issuer + ResetPath + "?token=" + token
	text := "Someone, probably you, asked to reset the password of your account " + u.Username + ".\n\n" +
		"To choose a new password, open this link within 30 minutes, in the browser you will use it in:\n\n" + link + "\n\n" +
		"You will need your second factor (your authenticator app, a texted code or a recovery code).\n\n" +
		"If you did not ask for this, ignore this message: your password stays as it is."
	if err := f.delivery.Email.Send(ctx, u.Email, "Reset your password", text); err != nil {
		return internal(fmt.Errorf("send reset link: %w", err))
	}
	f.log.Info("password reset link sent", "user", u.ID, "reset", r.ID, "door", job.door)
	return nil
}

// resetTokenMAC is what the store keeps of a link's token: a keyed MAC
// (the sent codes' key, under its own label), so a copy of the database
// opens no link.
func (f *Flow) resetTokenMAC(token string) []byte {
	return mac(f.keys.OTP, "password-reset", token)
}

// forgotQueue bounds the requests being carried out in the background: a
// flood from many addresses gets its answers, but never more than
// maxForgotInFlight lookups and mails at once. Its zero value is ready.
type forgotQueue struct {
	once  sync.Once
	slots chan struct{}
}

const maxForgotInFlight = 16

// start runs fn in the background if a slot is free, and reports whether
// it did.
func (q *forgotQueue) start(fn func()) bool {
	q.once.Do(func() { q.slots = make(chan struct{}, maxForgotInFlight) })
	select {
	case q.slots <- struct{}{}:
		go func() {
			defer func() { <-q.slots }()
			fn()
		}()
		return true
	default:
		return false
	}
}
