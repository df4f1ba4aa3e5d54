package login

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/storage"
)

// TOTP parameters: RFC 6238 defaults, which every authenticator app reads.
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	totpSkew   = 1 // steps either side of now, for clock drift and typing time
)

// Sealer encrypts secrets at rest; keys.Sealer is one.
type Sealer = account.Sealer

// Enrollment is a new TOTP secret, to be shown once to its owner.
type Enrollment = account.Enrollment

// EnrollmentFor describes an existing secret again, with its otpauth URL.
var EnrollmentFor = account.EnrollmentFor

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
