package login

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode"

	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// Adding or replacing an authenticator, and making new recovery codes,
// take the same proof as removing a factor: a fresh code from a factor the
// user already has — a current code from the authenticator app, or a
// recovery code (spent) — sent as {"otp": "…"}. Without it, whoever holds
// a fresh access token (a stolen one, or a borrowed unlocked device) could
// swap the owner's authenticator for his own and keep the account.
//
//   - A user with an authenticator app or recovery codes left must send
//     such a code. Wrong codes count against the account like any wrong
//     code (throttled, then locked).
//   - A user whose only factor is a code sent by email or SMS cannot be sent
//     one here: the step-up rule stands in for it. The token's sign-in is
//     at most RecentSignIn old, and for such a user that sign-in asked for
//     the code sent to that very address or number. An account exempt from
//     the second factor signed in without one, so it is refused instead.
//   - A user with no factor at all has nothing to prove it with: the only
//     exception, as before.

var (
	errProofNeeded = &Error{Code: CodeInvalidRequest, Message: "Send a current code from your authenticator app, " +
		"or a recovery code, in otp."}
	errExemptProof = &Error{Code: CodeStepUpRequired, Message: "Your sign-in used no second factor. " +
		"Ask your administrator to change your second factors."}
)

// proofCode reads the optional {"otp": "…"} of a call whose body used to be
// empty: an empty body is no code, anything else must be JSON.
func (h *Handler) proofCode(w http.ResponseWriter, r *http.Request) (string, bool) {
	if r.ContentLength == 0 {
		return "", true
	}
	var in struct{ OTP string }
	if !h.decodeJSON(w, r, &in) {
		return "", false
	}
	return in.OTP, true
}

// proveFactor checks the proof described above for a change to u's factors.
func (f *Flow) proveFactor(ctx context.Context, u *storage.User, code string) error {
	hasTOTP, left, err := f.ownCodes(ctx, u)
	if err != nil {
		return err
	}
	if !hasTOTP && left == 0 {
		has, err := f.factorsOf(ctx, u)
		if err != nil {
			return err
		}
		if (has.Email || has.SMS) && u.OTPExempt {
			return errExemptProof
		}
		return nil // the step-up rule, or no factor at all
	}
	code = withoutSpaces(code)
	if code == "" {
		return errProofNeeded
	}
	err = f.guessCode(ctx, u, func() (bool, error) { return f.recoveryOrTOTP(ctx, u, code, hasTOTP) })
	if err != nil && AsError(err).Code == CodeInvalidOTP {
		f.log.Info("factor change refused", "user", u.ID, "reason", "wrong code")
	}
	return err
}

// ownCodes says what codes u can type without a send: whether they have an
// authenticator app, and how many recovery codes are left.
func (f *Flow) ownCodes(ctx context.Context, u *storage.User) (hasTOTP bool, recoveryLeft int, err error) {
	_, err = f.db.GetTOTP(ctx, u.ID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return false, 0, internal(err)
	}
	hasTOTP = err == nil
	recoveryLeft, err = f.db.RecoveryCodesLeft(ctx, u.ID)
	if err != nil {
		return false, 0, internal(err)
	}
	return hasTOTP, recoveryLeft, nil
}

// withoutSpaces is a typed code without the spaces people put in it.
func withoutSpaces(code string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, code)
}

// recoveryOrTOTP reports whether code is one of the user's recovery codes
// (then spent) or, if they have an authenticator, its current code.
func (f *Flow) recoveryOrTOTP(ctx context.Context, u *storage.User, code string, hasTOTP bool) (bool, error) {
	ok, err := f.useRecovery(ctx, u, code)
	if err == nil && !ok && hasTOTP {
		ok, err = f.checkTOTP(ctx, u.ID, code, f.now())
	}
	return ok, err
}

// guessCode evaluates a self-service code like a sign-in's: the guess is
// reserved against the account, the pair and the source address before
// check runs, so no concurrency gets more codes checked than the limits
// allow; a right code gives its guess back.
func (f *Flow) guessCode(ctx context.Context, u *storage.User, check func() (bool, error)) error {
	g := f.throttle.guessFor(f.throttle.account(u, ""), clientip.From(ctx), nil)
	if err := f.throttle.reserve(ctx, g, f.now()); err != nil {
		return err
	}
	ok, err := check()
	if err != nil || ok {
		if rerr := f.throttle.release(ctx, g); rerr != nil {
			return rerr
		}
		if err != nil {
			return AsError(err)
		}
		return nil
	}
	return fail(CodeInvalidOTP, msgInvalidOTP)
}
