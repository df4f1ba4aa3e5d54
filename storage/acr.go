package storage

// Authentication context class references a sign-in can reach (the ID
// token's acr): the REFEDS assurance profiles. A sign-in with a password
// and a second factor (amr carries mfa) is ACRMultiFactor; one with a
// single factor (a passwordless code, an exempt account's password) is
// ACRSingleFactor. The login refuses a single-factor sign-in to a request
// whose acr_values ask for ACRMultiFactor alone.
const (
	ACRMultiFactor  = "https://refeds.org/profile/mfa"
	ACRSingleFactor = "https://refeds.org/profile/sfa"
)
