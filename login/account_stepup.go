package login

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/storage"
)

// The account page's proofs. Every change on the page takes a fresh code
// from a factor the user has, typed into the form that asks for the
// change: a current code from the authenticator app, a recovery code
// (spent), or a code the page sends on demand to the address or number on
// file (purpose "stepup"). Each is a guess, reserved and throttled like
// every code guess (guessCode). A sent code works once, for
// CodeLifetime, and for at most MaxOTPFailures wrong tries.
//
// A new email address is confirmed by a code sent to it (purpose "email");
// when another account has that address, the message sent there says so
// instead of carrying a code, and the page answers alike: only the owner
// of the mailbox learns that it is taken, which cannot be avoided.

const (
	purposeStepUp = "stepup"
	purposeEmail  = "email"
)

var (
	errPageProofNeeded = &Error{Code: CodeInvalidRequest, Message: "Enter a current code from your authenticator app, " +
		"a recovery code, or a code we send you."}
	errNoProof = &Error{Code: CodeStepUpRequired, Message: "Your account has no second factor to confirm changes with. " +
		"Ask your administrator."}
)

// proofChannels are the methods (EMAIL, SMS) whose sent codes stand in for
// a second factor for u.
func (f *Flow) proofChannels(ctx context.Context, u *storage.User) ([]string, error) {
	has, err := f.factorsOf(ctx, u)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range []string{MethodEmail, MethodSMS} {
		if has.can(m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// proveStepUp checks the fresh code an account-page change asks for.
func (f *Flow) proveStepUp(ctx context.Context, u *storage.User, code string) error {
	hasTOTP, left, err := f.ownCodes(ctx, u)
	if err != nil {
		return err
	}
	channels, err := f.proofChannels(ctx, u)
	if err != nil {
		return err
	}
	if !hasTOTP && left == 0 && len(channels) == 0 {
		return errNoProof
	}
	code = withoutSpaces(code)
	if code == "" {
		return errPageProofNeeded
	}
	return f.guessCode(ctx, u, func() (bool, error) {
		ok, err := f.recoveryOrTOTP(ctx, u, code, hasTOTP)
		if err != nil || ok || len(channels) == 0 {
			return ok, err
		}
		_, ok, err = f.useAccountCode(ctx, u, purposeStepUp, code)
		return ok, err
	})
}

// useAccountCode spends the user's sent code for purpose if code is it.
func (f *Flow) useAccountCode(ctx context.Context, u *storage.User, purpose, code string) (*storage.AccountCode, bool, error) {
	c, ok, err := f.db.UseAccountCode(ctx, u.ID, purpose, f.accountCodeMAC(u.ID, purpose, code), f.MaxOTPFailures)
	if err != nil {
		return nil, false, internal(err)
	}
	return c, ok, nil
}

func (f *Flow) accountCodeMAC(userID, purpose, code string) []byte {
	return mac(f.keys.OTP, "account-code", userID, purpose, code)
}

// sendStepUp sends the user a code for the next change, by method (EMAIL
// or SMS, one of their proofChannels), and returns where it went, masked.
func (f *Flow) sendStepUp(ctx context.Context, u *storage.User, method string) (string, error) {
	channels, err := f.proofChannels(ctx, u)
	if err != nil {
		return "", err
	}
	s, to, ok := f.sender(method, u)
	if !ok || !slices.Contains(channels, method) {
		return "", fail(CodeInvalidRequest, "Codes cannot be sent to you that way.")
	}
	if err := f.accountSendLimited(ctx, u, method, to); err != nil {
		return "", err
	}
	code := newCode()
	if err := f.storeAccountCode(ctx, u, purposeStepUp, to, code); err != nil {
		return "", err
	}
	text := fmt.Sprintf("Your code to confirm a change to your account is %s. It works for %d minutes. "+
		"If you are not changing your account, someone is signed in as you: sign out every session and change your password.",
		code, int(f.delivery.CodeLifetime/time.Minute))
	if err := s.Send(ctx, to, "Your code to confirm a change", text); err != nil {
		return "", internal(fmt.Errorf("send step-up code: %w", err))
	}
	f.log.Info("account code sent", "user", u.ID, "method", method, "purpose", purposeStepUp)
	return mask(method, to), nil
}

// accountSendLimited counts a send of the account page against the source
// address, the user and the destination, like the sign-in's codes.
func (f *Flow) accountSendLimited(ctx context.Context, u *storage.User, method, to string) error {
	if err := f.resendLimited(ctx); err != nil {
		return err
	}
	limit, wait, err := f.sendLimited(ctx, u.ID, method, to)
	if err != nil {
		return internal(err)
	}
	if limit != "" {
		f.log.Warn("account code not sent: send limit reached", "user", u.ID, "method", method, "limit", limit)
		return throttled("Too many codes were sent.", wait)
	}
	return nil
}

func (f *Flow) storeAccountCode(ctx context.Context, u *storage.User, purpose, target, code string) error {
	c := &storage.AccountCode{UserID: u.ID, Purpose: purpose, Target: target, CodeMAC: f.accountCodeMAC(u.ID, purpose, code),
		ExpiresAt: f.now().Add(f.delivery.CodeLifetime)}
	if err := f.db.SetAccountCode(ctx, c); err != nil {
		return internal(err)
	}
	return nil
}

// startEmailChange sends the code that confirms email as the user's new
// address — or, when another account has it, a notice without a code, and
// stores a code nobody knows, so that the page and what follows look the
// same. The caller has checked the step-up proof.
func (f *Flow) startEmailChange(ctx context.Context, u *storage.User, email string) error {
	if f.delivery.Email == nil {
		return fail(CodeNotEnabled, "This server sends no email, so your address cannot be confirmed here. Ask your administrator.")
	}
	email = strings.TrimSpace(email)
	if err := account.CheckEmail(email); err != nil {
		return fail(CodeInvalidRequest, "Enter one email address, like name@example.com.")
	}
	if strings.EqualFold(email, u.Email) {
		return fail(CodeInvalidRequest, "That is already your email address.")
	}
	if err := f.accountSendLimited(ctx, u, MethodEmail, email); err != nil {
		return err
	}
	free, err := f.accounts.EmailFree(ctx, u.ID, email)
	if err != nil {
		return internal(err)
	}
	code, subject := newCode(), "Confirm your new email address"
	text := fmt.Sprintf("Your code to make this the email address of your account is %s. It works for %d minutes. "+
		"If you did not ask for it, ignore this message.", code, int(f.delivery.CodeLifetime/time.Minute))
	if !free {
		code, subject = "taken:"+newID(), "This email address is in use"
		text = "Someone asked to make this the email address of their account, but another account already uses it, " +
			"so nothing was changed. If it was you, sign in to the account that has this address instead."
	}
	if err := f.storeAccountCode(ctx, u, purposeEmail, email, code); err != nil {
		return err
	}
	if err := f.delivery.Email.Send(ctx, email, subject, text); err != nil {
		return internal(fmt.Errorf("send email confirmation: %w", err))
	}
	f.log.Info("account code sent", "user", u.ID, "method", MethodEmail, "purpose", purposeEmail)
	return nil
}

// pendingEmail is the address the user's email change waits to confirm, or "".
func (f *Flow) pendingEmail(ctx context.Context, u *storage.User) (string, error) {
	c, err := f.db.AccountCodeFor(ctx, u.ID, purposeEmail)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", internal(err)
	}
	return c.Target, nil
}

// confirmEmailChange makes the address the code was sent to the user's,
// if code is that code.
func (f *Flow) confirmEmailChange(ctx context.Context, a account.Actor, u *storage.User, code string) error {
	var sent *storage.AccountCode
	err := f.guessCode(ctx, u, func() (bool, error) {
		c, ok, err := f.useAccountCode(ctx, u, purposeEmail, strings.TrimSpace(code))
		sent = c
		return ok, err
	})
	if err != nil {
		return err
	}
	_, err = f.accounts.ChangeEmail(ctx, a, u.ID, sent.Target)
	if errors.Is(err, account.ErrConflict) { // taken since the code was sent
		return fail(CodeInvalidRequest, "This email address cannot be used for your account.")
	}
	if err != nil {
		return internal(err)
	}
	return nil
}
