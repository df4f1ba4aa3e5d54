package login

import (
	"context"
	"errors"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// The audit trail of sign-in: one event per step outcome (storage.Event),
// one INSERT each. The types are public names (README, "Audit trail"):
const (
	EventPassword        = "login.password"           // the password step: success, or why not
	EventSecondFactor    = "login.second_factor"      // the code step; detail method TOTP, EMAIL, SMS or RECOVERY
	EventSucceeded       = "login.succeeded"          // a session issued (direct mode: tokens); detail amr
	EventLogout          = "logout"                   // the user ended their session
	EventFactorEnrolled  = "factor.enrolled"          // a new authenticator confirmed: during a sign-in or on a link
	EventEnrollPassword  = "enrollment.password"      // the password proven on an enrolment link
	EventEnrollPassSet   = "enrollment.password_set"  // a user without a password chose one on a link
	EventTOTPAdded       = account.EventTOTPAdded     // self-service: a new authenticator
	EventFactorRemoved   = account.EventFactorRemoved // self-service: the authenticator removed
	EventRecoveryCodes   = account.EventRecoveryCodes // self-service: new recovery codes
	EventPreferredMethod = account.EventPreferred     // self-service: the preferred method changed
)

// What is not recorded, on purpose: requests refused before any check
// (malformed input, an unknown or expired request or transaction) and
// requests over the per-address request rate. They cost nothing to send,
// so recording each would let anyone fill the trail; the log and the
// metrics (stile_login_throttled_total) still count them. Everything past
// the per-address rate is bounded by it, so its events are too.

// audit is one step's event, filled in as the step learns who and what.
// Only an armed audit is recorded: see above.
type audit struct {
	storage.Event
	armed bool
	done  bool // recorded already
}

func newAudit(typ string) *audit {
	return &audit{Event: storage.Event{Type: typ, Detail: storage.Attributes{}}}
}

// user names the account the step is about. Only an existing account is
// named: for an unknown username nothing is, since people type passwords
// into the username field.
func (a *audit) user(u *storage.User) {
	if a != nil && u != nil {
		a.UserID, a.ActorUser = u.ID, u.ID
	}
}

func (a *audit) arm() {
	if a != nil {
		a.armed = true
	}
}

// refused notes a reason more precise than the error's code.
func (a *audit) refused(reason string) {
	if a != nil && a.Reason == "" {
		a.Reason = reason
	}
}

// finish records how the step ended (err nil: it passed).
func (f *Flow) finish(ctx context.Context, a *audit, err error) {
	if a == nil || !a.armed || a.done {
		return
	}
	a.done = true
	if err != nil {
		a.Outcome = storage.Failure
		if a.Reason == "" {
			a.Reason = reasonFor(err)
		}
	} else {
		a.Outcome, a.Reason = storage.Success, ""
	}
	f.record(ctx, &a.Event)
}

// record stores e with the request's source address. Recording never fails
// the sign-in: an error is logged and the step goes on.
func (f *Flow) record(ctx context.Context, e *storage.Event) {
	if e.Remote == "" {
		if addr := clientip.From(ctx); addr.IsValid() {
			e.Remote = addr.String()
		}
	}
	if err := f.db.RecordEvent(ctx, e); err != nil {
		f.log.Error("record audit event", "type", e.Type, "err", err)
	}
}

// recordFor records a one-shot event about u: a self-service change
// through client, or an enrolment link's step (client "").
func (f *Flow) recordFor(ctx context.Context, typ string, u *storage.User, client string, err error, detail storage.Attributes) {
	a := newAudit(typ)
	a.user(u)
	a.ActorClient = client
	a.arm()
	for k, v := range detail {
		a.Detail[k] = v
	}
	f.finish(ctx, a, err)
}

// reasonFor is the stable reason code of a failed step.
func reasonFor(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return "server_error"
	}
	switch e.Code {
	case CodeInvalidOTP:
		return "wrong_code"
	case CodeAccountDisabled:
		return "disabled"
	case CodeBusy:
		return "busy"
	case CodeExpired:
		return "expired"
	case CodeNoSecondFactor:
		return "no_second_factor"
	default:
		return string(e.Code)
	}
}

// The step's audit travels in the context to the helpers that learn why
// it failed (a lock, a wrong code on a dying transaction).
type auditKey struct{}

func withAudit(ctx context.Context, a *audit) context.Context {
	return context.WithValue(ctx, auditKey{}, a)
}

func auditFrom(ctx context.Context) *audit { a, _ := ctx.Value(auditKey{}).(*audit); return a }

// signedIn records a completed sign-in: who, to which client, through
// which door, with which factors (amr) and, for a browser, which session.
func (f *Flow) signedIn(ctx context.Context, u *storage.User, clientID, door string, amr []string, sessionID string) {
	f.finish(ctx, auditFrom(ctx), nil) // the step that completed it passed, and comes first in the trail
	a := newAudit(EventSucceeded)
	a.user(u)
	a.ActorClient = clientID
	a.Detail["door"], a.Detail["amr"] = door, amr
	if sessionID != "" {
		a.Detail["session"] = sessionID
	}
	a.arm()
	f.finish(ctx, a, nil)
}
