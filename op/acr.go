package op

import (
	"slices"

	"github.com/stile-id/stile/storage"
)

// Authentication context class references (the ID token's acr), from the
// REFEDS assurance profiles, which many identity providers and relying
// parties already know: a sign-in with two factors (amr carries mfa: a
// password and a one-time code) is ACRMultiFactor; one with a single
// factor — a passwordless code sign-in (amr ["otp"]), or an account an
// operator exempted from the second factor (amr ["pwd"]) — is
// ACRSingleFactor. A relying party that needs two factors checks acr (or
// amr's mfa) in the ID token.
const (
	ACRMultiFactor  = storage.ACRMultiFactor
	ACRSingleFactor = storage.ACRSingleFactor
)

// acrValuesSupported is what discovery advertises.
var acrValuesSupported = []string{ACRMultiFactor, ACRSingleFactor}

// acrFor is the acr of a sign-in with these amr values; "" for none (no
// sign-in: a client_credentials token).
func acrFor(amr []string) string {
	switch {
	case len(amr) == 0:
		return ""
	case slices.Contains(amr, "mfa"):
		return ACRMultiFactor
	}
	return ACRSingleFactor
}
