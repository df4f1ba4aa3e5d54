package login

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// Passwordless sign-in by code ("authorization code" login in Drupal's
// words): identifier → a code emailed or texted to the account → signed
// in. It is one factor, something the user has (the mailbox or the
// phone), and says so: the session's amr is ["otp"] without "mfa" and the
// ID token's acr the single-factor one (op/acr.go). A client opts in
// (storage.Client.Passwordless); every other client's requests refuse it,
// and a single-factor session never answers them silently (reusable).
//
//	identifier ──StartPasswordless──► transaction (passwordless, EMAIL or SMS) ──Verify──► done
//
// Nothing tells an identifier that names an account from one that does
// not: both get a transaction and the same answer, and the answer comes
// before any mail or text leaves (sent in the background, so the time a
// gateway takes says nothing either). A transaction nobody matched has no
// user and no code anyone knows; its wrong codes count against the
// identifier's HMAC exactly as a known account's count against it. The
// same holds for a disabled account and one without the channel.
//
// The channel follows the identifier's shape only, never the account: a
// phone number gets a text (when SMS is configured), anything else an
// email; an account without that channel on file gets nothing.

// EventPasswordless is the audit event of a passwordless start.
const EventPasswordless = "login.passwordless"

// CodeRequest is the passwordless start's input.
type CodeRequest struct {
	AuthRequestID string
	Binding       []byte // the browser's binding (pages) or the loginToken (JSON API)
	Door          string // storage.DoorPages or storage.DoorAPI
	Identifier    string // a username, email or phone, as the deployment signs in (SignInWith)
	RemoteAddr    string // for the log
}

// msgCodeSent is the one answer to every passwordless start.
const msgCodeSent = "If an account matches, we sent it a 6-digit code. Enter it below."

var errNoPasswordless = &Error{Code: CodeNotEnabled, Message: "This application does not offer sign-in with a code."}

// StartPasswordless opens a passwordless transaction for an authorization
// request of a client with the switch on, and sends a code if the
// identifier names an active account with the channel on file. Starts are
// limited per source address (Limits.ResendPerAddress: each may send a
// code, as a resend does), sends per user and destination (sendCode).
func (f *Flow) StartPasswordless(ctx context.Context, in CodeRequest) (ch *Challenge, err error) {
	a := newAudit(EventPasswordless)
	a.Detail["door"] = in.Door
	ctx = withAudit(ctx, a)
	defer func() { f.finish(ctx, a, err) }()
	id := strings.TrimSpace(in.Identifier)
	if id == "" || len(id) > 256 {
		return nil, fail(CodeInvalidRequest, "Enter your "+strings.ToLower(f.signInWith.Label())+".")
	}
	ar, err := f.openAuthRequest(ctx, in.AuthRequestID, in.Binding, in.Door)
	if err != nil {
		return nil, err
	}
	a.ActorClient = ar.ClientID
	if asksMFA(ar) {
		return nil, errNoPasswordless
	}
	if err := f.passwordlessClient(ctx, ar.ClientID); err != nil {
		return nil, err
	}
	if err := f.throttle.hit(ctx, "passwordless", f.limits.ResendPerAddress, clientip.From(ctx)); err != nil {
		f.log.Info("login refused", "step", "passwordless", "reason", "address rate", "remote", in.RemoteAddr)
		return nil, err
	}
	a.arm()
	user, key, err := f.findAccount(ctx, id)
	if err != nil {
		return nil, err
	}
	method := f.passwordlessMethod(id)
	tx := &storage.LoginTransaction{ID: newID(), AuthRequestID: sql.NullString{String: ar.ID, Valid: true}, ClientID: ar.ClientID,
		Door: in.Door, BindingHash: ar.BindingHash, ExpiresAt: ar.ExpiresAt, Method: method, Passwordless: true,
		Subject: f.throttle.account(user, key)}
	reach := user != nil && !user.Disabled && f.reaches(method, user)
	if reach {
		tx.UserID = user.ID
		a.user(user)
	}
	if err := f.db.CreateLoginTransaction(ctx, tx); err != nil {
		return nil, internal(err)
	}
	if !reach {
		user = nil
	}
	f.sendInBackground(ctx, tx, user)
	a.Detail["method"], a.Detail["sent"] = method, reach
	f.log.Info("passwordless code step opened", "transaction", tx.ID, "client", ar.ClientID, "matched", reach,
		"remote", in.RemoteAddr)
	return f.challenge(tx, user, nil), nil
}

// sendInBackground sends a passwordless transaction's code to u, or for
// nil u (nobody matched, or the account cannot be reached) stands in for
// the send with a code nobody knows (suppressCode), after the answer:
// neither path's time shows in it. The send limits apply as to any code
// (sendCode). Settle waits for these.
func (f *Flow) sendInBackground(ctx context.Context, tx *storage.LoginTransaction, u *storage.User) {
	ctx = context.WithoutCancel(ctx)
	f.background.Add(1)
	go func() {
		defer f.background.Done()
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		var err error
		if u != nil {
			err = f.sendCode(ctx, tx, u)
		} else {
			err = f.suppressCode(ctx, tx)
		}
		if err != nil {
			f.log.Error("passwordless code not sent", "transaction", tx.ID, "err", err)
		}
	}()
}

// Settle waits until every passwordless code being sent in the background
// is sent (or failed): at shutdown, so none is lost in flight.
func (f *Flow) Settle() { f.background.Wait() }

// strongEnough reports whether session s may answer the request without a
// new sign-in as far as its factors go: a session a passwordless code
// started (one factor: amr without pwd and without mfa) answers only the
// requests of clients that accept passwordless sign-in themselves; any
// other client's request asks for a full sign-in (which replaces the
// session). An exempt account's password-only session is the operator's
// choice (stile user update --otp-exempt) and stays as it was.
func (f *Flow) strongEnough(ctx context.Context, ar *storage.AuthRequest, s *storage.Session) bool {
	if slices.Contains(s.AMR, "mfa") || slices.Contains(s.AMR, "pwd") {
		return true
	}
	return !asksMFA(ar) && f.passwordlessClient(ctx, ar.ClientID) == nil
}

// asksMFA reports whether the request's acr_values ask for two factors
// alone (storage.ACRMultiFactor without storage.ACRSingleFactor): then no
// passwordless sign-in, or session, answers it.
func asksMFA(ar *storage.AuthRequest) bool {
	v := strings.Fields(ar.ACRValues)
	return slices.Contains(v, storage.ACRMultiFactor) && !slices.Contains(v, storage.ACRSingleFactor)
}

// passwordlessClient refuses passwordless sign-in to a client without the
// switch.
func (f *Flow) passwordlessClient(ctx context.Context, clientID string) error {
	c, err := f.db.GetClient(ctx, clientID)
	if err != nil {
		return internal(err)
	}
	if !c.Passwordless {
		return errNoPasswordless
	}
	return nil
}

// Passwordless reports whether the authorization request's client offers
// sign-in by code, and the request does not ask for two factors, for the
// sign-in page's link.
func (f *Flow) Passwordless(ctx context.Context, authRequestID string) bool {
	ar, err := f.db.GetAuthRequest(ctx, authRequestID)
	if err != nil || asksMFA(ar) {
		return false
	}
	return f.passwordlessClient(ctx, ar.ClientID) == nil
}

// passwordlessMethod is the channel for an identifier: SMS for a phone
// number when texts are configured, else email — from the identifier's
// shape and the deployment's senders alone, so it says nothing of the
// account.
func (f *Flow) passwordlessMethod(identifier string) string {
	if storage.PhoneKey(identifier) != "" && f.signInWith.kinds().has(IdentifyByPhone) && f.delivery.SMS != nil {
		return MethodSMS
	}
	if f.delivery.Email == nil && f.delivery.SMS != nil {
		return MethodSMS
	}
	return MethodEmail
}

// reaches reports whether a code by method can reach u.
func (f *Flow) reaches(method string, u *storage.User) bool {
	_, _, ok := f.sender(method, u)
	return ok
}

// passwordlessAMR is what a passwordless sign-in proves: one factor, a
// one-time code (RFC 8176 "otp"; a texted code too, as the issue asks:
// "sms" would say the channel, not the count).
var passwordlessAMR = []string{"otp"}

// passwordlessText is a passwordless code's message: it must not tell the
// owner that someone knows their password, as a second-factor code's does.
func passwordlessText(code string, lifetime time.Duration) string {
	return fmt.Sprintf("Your sign-in code is %s. It works for %d minutes. If you did not just ask to sign in, ignore this "+
		"message: nobody can sign in without the code.", code, int(lifetime/time.Minute))
}
