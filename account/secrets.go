package account

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/stile-id/stile/storage"
)

// This file holds the secrets an account is given — passwords' rules,
// enrolment links, TOTP secrets, recovery codes — which the login package
// checks and every front door hands out.

// Password length limits (ASVS 6.2.1, 6.2.9): at least 8 characters, and
// long passphrases welcome up to a bound that keeps hashing cheap to call.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 1024
)

// CheckPasswordPolicy says what is wrong with a new password, if anything.
// There are no composition rules (NIST SP 800-63B 5.1.1.2); a password on
// the embedded list of common, breached passwords is refused (breached.go).
func CheckPasswordPolicy(password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLength:
		return fmt.Errorf("the password has %d characters; use at least %d", n, MinPasswordLength)
	case len(password) > MaxPasswordLength:
		return fmt.Errorf("the password is longer than %d bytes", MaxPasswordLength)
	case IsCommonPassword(password):
		return errCommonPassword
	}
	return nil
}

// errCommonPassword refuses a password from the breached list (breached.go).
var errCommonPassword = errors.New("it is one of the most common passwords, found in leaks from other sites, " +
	"which attackers try first; choose one nobody else is likely to use")

// MAC is HMAC-SHA256 over parts joined by NUL: how codes, recovery codes
// and API keys are stored.
func MAC(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return m.Sum(nil)
}

// EnrollPath is where an enrolment link points.
const EnrollPath = "/enroll"

// DefaultEnrollmentLinkTTL is how long an enrolment link works unless the
// operator says otherwise.
const DefaultEnrollmentLinkTTL = 24 * time.Hour

// MaxEnrollmentLinkTTL is the longest an enrolment link may work.
const MaxEnrollmentLinkTTL = 7 * 24 * time.Hour

// NewEnrollmentLink creates a single-use link with which the user sets up
// an authenticator app: they prove their password on it (or choose one,
// if they have none), see a new secret once, and confirm it with a code.
// Only the token's hash is stored; any earlier link of the user stops
// working. It returns the link's URL.
func NewEnrollmentLink(ctx context.Context, db *storage.DB, issuer, userID string, ttl time.Duration, now time.Time) (string, time.Time, error) {
	if ttl <= 0 || ttl > MaxEnrollmentLinkTTL {
		return "", time.Time{}, fmt.Errorf("an enrolment link lives between a second and 7 days, not %s", ttl)
	}
	b := make([]byte, 32)
	rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	l := &storage.EnrollmentLink{ID: uuid.NewString(), TokenHash: LinkHash(token), UserID: userID, ExpiresAt: now.Add(ttl)}
	if err := db.CreateEnrollmentLink(ctx, l); err != nil {
		return "", time.Time{}, err
	}
	return strings.TrimSuffix(issuer, "/") + EnrollPath + "?token=" + url.QueryEscape(token), l.ExpiresAt, nil
}

// LinkHash is how an enrolment link's token is stored and looked up.
func LinkHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Sealer encrypts secrets at rest, bound to where they are stored;
// keys.Sealer is one.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Enrollment is a new TOTP secret, to be shown once to its owner.
type Enrollment struct {
	Secret string // base32, for typing into an app
	URL    string // otpauth://totp/…, for a QR code
}

// EnrollTOTP gives the user a new authenticator secret, replacing any
// previous one. Only an operator (or a path that proves more than a
// password) may call it: whoever sees the secret owns the second factor.
func EnrollTOTP(ctx context.Context, db *storage.DB, sealer Sealer, issuer string, u *storage.User) (*Enrollment, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: u.Username,
		Period:      30,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
		SecretSize:  20,
	})
	if err != nil {
		return nil, fmt.Errorf("generate TOTP secret: %w", err)
	}
	if err := SetTOTPSecret(ctx, db, sealer, u.ID, key.Secret()); err != nil {
		return nil, err
	}
	return EnrollmentFor(issuer, u.Username, key.Secret()), nil
}

// SetTOTPSecret seals a base32 TOTP secret, bound to its user, and stores
// it as the user's authenticator.
func SetTOTPSecret(ctx context.Context, db *storage.DB, sealer Sealer, userID, secret string) error {
	sealed, err := sealer.Seal([]byte(secret), storage.TOTPSecretAAD(userID))
	if err != nil {
		return fmt.Errorf("seal TOTP secret: %w", err)
	}
	return db.SetTOTP(ctx, userID, sealed)
}

// EnrollmentFor describes an existing secret again, with its otpauth URL
// (the Key URI Format authenticator apps read from QR codes).
func EnrollmentFor(issuer, account, secret string) *Enrollment {
	q := url.Values{}
	q.Set("secret", secret)
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", "6")
	q.Set("period", "30")
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + account, RawQuery: q.Encode()}
	return &Enrollment{Secret: secret, URL: u.String()}
}

// Recovery codes: ten per user, ten characters from an alphabet without
// look-alikes (shown as xxxxx-xxxxx), 50 bits each. They are stored as
// keyed MACs; a fast MAC suffices since they are random and rate-limited
// like any code (ASVS 6.5.2).
const (
	recoveryCount    = 10
	recoveryAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"
)

// NewRecoveryCodes gives the user ten new recovery codes, voiding the old
// ones, and returns them: they are shown this once.
func NewRecoveryCodes(ctx context.Context, db *storage.DB, key []byte, userID string) ([]string, error) {
	codes := make([]string, recoveryCount)
	macs := make([][]byte, recoveryCount)
	for i := range codes {
		b := make([]byte, 10)
		for j := range b {
			n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(recoveryAlphabet))))
			b[j] = recoveryAlphabet[n.Int64()]
		}
		codes[i] = string(b[:5]) + "-" + string(b[5:])
		macs[i] = MAC(key, userID, string(b))
	}
	if err := db.ReplaceRecoveryCodes(ctx, userID, macs); err != nil {
		return nil, err
	}
	return codes, nil
}
