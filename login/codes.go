package login

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// Delivery is how stile sends one-time codes and notices. A nil sender
// means the channel is not configured.
type Delivery struct {
	Email        Sender
	SMS          Sender
	EmailFactor  bool          // an emailed code may stand in for the second factor (weakest: NIST SP 800-63B 5.1.3.1)
	CodeLifetime time.Duration // how long a sent code works; at most 10 minutes
	ResendAfter  time.Duration // the wait before another code may be sent
}

// DefaultDelivery has no senders; codes live 5 minutes, resends wait 30 s.
var DefaultDelivery = Delivery{EmailFactor: true, CodeLifetime: 5 * time.Minute, ResendAfter: 30 * time.Second}

// Keys for the keyed MACs of codes; derived from the master key.
type CodeKeys struct {
	OTP      []byte // sent codes, bound to their transaction
	Recovery []byte // recovery codes, bound to their user
	APIKey   []byte // the direct mode's API keys and transaction bindings
	// LoginToken MACs the JSON API's loginToken (doors.go).
	LoginToken []byte
	// Challenge MACs the challenge endpoint's transaction bindings (challenge.go).
	Challenge []byte
}

// newCode is six random decimal digits.
func newCode() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1_000_000))
	return fmt.Sprintf("%06d", n.Int64())
}

var mac = account.MAC

// sender returns the channel for a sending method, and the user's address
// or number on it.
func (f *Flow) sender(method string, u *storage.User) (Sender, string, bool) {
	switch method {
	case MethodEmail:
		return f.delivery.Email, u.Email, f.delivery.Email != nil && u.Email != ""
	case MethodSMS:
		to, ok := storage.E164(u.Phone)
		return f.delivery.SMS, to, f.delivery.SMS != nil && ok
	}
	return nil, "", false
}

// sendCode sends a new code for the transaction, replacing any earlier one
// — unless the user or the destination has had its share of codes
// (Limits.SendsPerMinute, SendsPerHour, across transactions and
// instances): then nothing is sent, and the caller answers exactly as if
// it had been. Every path that sends a code comes through here: the first
// code of a transaction, a resend, the code before a policy's enrolment.
func (f *Flow) sendCode(ctx context.Context, tx *storage.LoginTransaction, u *storage.User) error {
	method := baseMethod(tx.Method)
	s, to, ok := f.sender(method, u)
	if !ok {
		return fail(CodeNoSecondFactor, msgNoSecondFactor)
	}
	if limit, wait, err := f.sendLimited(ctx, u.ID, method, to); err != nil {
		return internal(err)
	} else if limit != "" {
		f.log.Warn("one-time code not sent: send limit reached", "user", u.ID, "method", method, "transaction", tx.ID,
			"limit", limit, "retry_after", wait.Round(time.Second))
		return f.suppressCode(ctx, tx)
	}
	code := newCode()
	exp := f.now().Add(f.delivery.CodeLifetime)
	if err := f.db.SetTransactionCode(ctx, tx.ID, mac(f.keys.OTP, tx.ID, code), exp); err != nil {
		return internal(err)
	}
	minutes := int(f.delivery.CodeLifetime / time.Minute)
	text := fmt.Sprintf("Your sign-in code is %s. It works for %d minutes. If you did not just try to sign in, "+
		"someone knows your password: change it.", code, minutes)
	if tx.Passwordless {
		text = passwordlessText(code, f.delivery.CodeLifetime)
	}
	if err := s.Send(ctx, to, "Your sign-in code", text); err != nil {
		return internal(fmt.Errorf("send code: %w", err))
	}
	f.log.Info("one-time code sent", "user", u.ID, "method", method, "transaction", tx.ID)
	return nil
}

// sendLimited counts one send against the user and against the
// destination, and names the first limit it exceeds ("" if none) with how
// long until it frees up. The short windows are counted first and a refusal
// stops the count, so sends refused by the minute's limit do not use up the
// hour's: an attacker hammering the password step gets at most
// SendsPerMinute codes a minute and SendsPerHour an hour delivered.
func (f *Flow) sendLimited(ctx context.Context, userID, method, to string) (string, time.Duration, error) {
	user, dest := "send:user:"+userID, "send:to:"+f.destinationKey(method, to)
	for _, c := range []struct {
		name, key string
		rate      storage.Rate
	}{
		{"per user per minute", user, f.limits.SendsPerMinute}, {"per destination per minute", dest, f.limits.SendsPerMinute},
		{"per user per hour", user, f.limits.SendsPerHour}, {"per destination per hour", dest, f.limits.SendsPerHour},
	} {
		// Each window has its own counter: "send:user:<id>/1m0s", "…/1h0m0s".
		ok, wait, err := f.db.Hit(ctx, c.key+"/"+c.rate.Per.String(), c.rate)
		if err != nil {
			return "", 0, fmt.Errorf("send limit: %w", err)
		}
		if !ok {
			return c.name, wait, nil
		}
	}
	return "", 0, nil
}

// destinationKey names an address or number in the send limits without
// storing it: a keyed MAC (the sent codes' key, under its own label) of
// its normalised form — an email address trimmed and lower-cased (a few
// mailboxes tell case apart; counting them together only limits more), a
// phone number in E.164 as sender returns it. Two accounts that share a
// mailbox or a phone share its limit.
func (f *Flow) destinationKey(method, to string) string {
	if method == MethodEmail {
		to = strings.ToLower(strings.TrimSpace(to))
	}
	return hex.EncodeToString(mac(f.keys.OTP, "send-destination", method, to))
}

// suppressCode stands in for a send the limits refused, so that nothing a
// caller can observe differs from a sent code: the answer is the same, and
// the resend cooldown starts as after a send. A code the user already has
// keeps working until it expires (a suppressed resend must not void the
// one that arrived); a new transaction gets a code nobody knows, so any
// code entered is wrong and counted like one.
func (f *Flow) suppressCode(ctx context.Context, tx *storage.LoginTransaction) error {
	codeMAC, exp := tx.CodeMAC, tx.CodeExpiresAt.Time
	if codeMAC == nil || !tx.CodeExpiresAt.Valid {
		codeMAC, exp = mac(f.keys.OTP, tx.ID, "unsent:"+newID()), f.now().Add(f.delivery.CodeLifetime)
	}
	if err := f.db.SetTransactionCode(ctx, tx.ID, codeMAC, exp); err != nil {
		return internal(err)
	}
	return nil
}

// resendLimited counts a resend against the request's source address
// (Limits.ResendPerAddress), before anything else is looked at, so that
// one address cannot make stile send codes for many transactions — nor
// probe transaction IDs — faster than a person would.
func (f *Flow) resendLimited(ctx context.Context) error {
	subject := clientip.Subject(clientip.From(ctx))
	ok, wait, err := f.db.Hit(ctx, "resend:"+subject, f.limits.ResendPerAddress)
	if err != nil {
		return internal(fmt.Errorf("resend limit: %w", err))
	}
	if !ok {
		f.log.Info("resend refused", "reason", "throttled", "subject", subject)
		f.count.Throttled("resend")
		return throttled("Too many new codes were asked for from your network.", wait)
	}
	return nil
}

// checkSentCode reports whether code is the transaction's current, unexpired code.
func (f *Flow) checkSentCode(tx *storage.LoginTransaction, code string) bool {
	if tx.CodeMAC == nil || !tx.CodeExpiresAt.Valid || !f.now().Before(tx.CodeExpiresAt.Time) {
		return false
	}
	return hmac.Equal(tx.CodeMAC, mac(f.keys.OTP, tx.ID, code))
}

// recoveryAlphabet is the alphabet of recovery codes (account/secrets.go
// makes them).
const recoveryAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

// recoveryForm normalises a typed recovery code, and reports whether the
// input has the shape of one (a 6-digit code does not).
func recoveryForm(s string) (string, bool) {
	s = strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(s))
	if len(s) != 10 {
		return "", false
	}
	for _, r := range s {
		if !strings.ContainsRune(recoveryAlphabet, r) {
			return "", false
		}
	}
	return s, true
}

// useRecovery spends one of the user's recovery codes, if code is one.
func (f *Flow) useRecovery(ctx context.Context, u *storage.User, code string) (bool, error) {
	norm, ok := recoveryForm(code)
	if !ok {
		return false, nil
	}
	used, err := f.db.UseRecoveryCode(ctx, u.ID, mac(f.keys.Recovery, u.ID, norm))
	if err != nil || !used {
		return false, err
	}
	left, _ := f.db.RecoveryCodesLeft(ctx, u.ID)
	f.notify(ctx, u, "A recovery code was used", fmt.Sprintf("A recovery code of your account was just used "+
		"(%d left). If it was not you, contact your administrator at once.", left))
	return true, nil
}

// notify tells the user, by email when one is on file, about a change to
// their account's security. A failure to send is logged, not fatal.
func (f *Flow) notify(ctx context.Context, u *storage.User, subject, text string) {
	if f.delivery.Email == nil || u.Email == "" {
		return
	}
	if err := f.delivery.Email.Send(ctx, u.Email, subject, text); err != nil {
		f.log.Error("notify user", "user", u.ID, "subject", subject, "err", err)
	}
}

// mask hides most of an address or number: a•••@example.com, •••• 0100.
func mask(method, to string) string {
	if method == MethodEmail {
		name, domain, ok := strings.Cut(to, "@")
		if !ok || name == "" {
			return "your email address"
		}
		return name[:1] + "•••@" + domain
	}
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, to)
	if len(digits) < 4 {
		return "your phone"
	}
	return "•••• " + digits[len(digits)-4:]
}
