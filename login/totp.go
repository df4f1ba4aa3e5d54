package login

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/url"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/stile-id/stile/storage"
)

// TOTP parameters: RFC 6238 defaults, which every authenticator app reads.
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	totpSkew   = 1 // steps either side of now, for clock drift and typing time
)

// Sealer encrypts secrets at rest, bound to where they are stored; keys.Sealer
// is one.
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
// previous one. Only an operator (or, later, a path that proves more than a
// password) may call it: whoever sees the secret owns the second factor.
func EnrollTOTP(ctx context.Context, db *storage.DB, sealer Sealer, issuer string, u *storage.User) (*Enrollment, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: u.Username,
		Period:      totpPeriod,
		Digits:      totpDigits,
		Algorithm:   otp.AlgorithmSHA1,
		SecretSize:  20,
	})
	if err != nil {
		return nil, fmt.Errorf("generate TOTP secret: %w", err)
	}
	sealed, err := sealer.Seal([]byte(key.Secret()), storage.TOTPSecretAAD(u.ID))
	if err != nil {
		return nil, fmt.Errorf("seal TOTP secret: %w", err)
	}
	if err := db.SetTOTP(ctx, u.ID, sealed); err != nil {
		return nil, err
	}
	return EnrollmentFor(issuer, u.Username, key.Secret()), nil
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

// OpenTOTP returns the user's enrolment with its secret unsealed.
func OpenTOTP(ctx context.Context, db *storage.DB, sealer Sealer, userID string) (*storage.TOTP, string, error) {
	t, err := db.GetTOTP(ctx, userID)
	if err != nil {
		return nil, "", err
	}
	secret, err := sealer.Open(t.SecretSealed, storage.TOTPSecretAAD(userID))
	if err != nil {
		return nil, "", fmt.Errorf("open TOTP secret of user %s: %w", userID, err)
	}
	return t, string(secret), nil
}

// matchTOTP finds the time step, within ±totpSkew of now and after
// lastStep, whose code is code. All candidate codes are computed and
// compared in constant time, so timing does not tell which step matched.
func matchTOTP(secret, code string, now time.Time, lastStep int64) (int64, bool) {
	current := now.Unix() / totpPeriod
	var found int64
	for step := current - totpSkew; step <= current+totpSkew; step++ {
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && step > lastStep {
			found = step
		}
	}
	return found, found != 0
}

// TOTPCode computes the code for secret at t, as an authenticator app would.
func TOTPCode(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
}
