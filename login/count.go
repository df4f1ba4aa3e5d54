package login

// Counter hears how login steps end, for metrics (cmd wires
// internal/metrics in). Every label comes from a fixed set — step names,
// the Method names, Codes, door names, limit names — never a user, a
// username or an address. Config.Counter nil: nothing is counted.
type Counter interface {
	// LoginStep: a password step ("password", factor PASSWORD) or a code
	// step ("otp", factor the transaction's method, RECOVERY for a recovery
	// code) ended with outcome "success" or its Code.
	LoginStep(step, factor, outcome string)
	// SignIn: a step completed a sign-in, with factor (NONE for an exempt
	// account) through door.
	SignIn(factor, door string)
	// Throttled: a limit refused a request (429): "password" and "otp" (per
	// address), "lock" (a failed-guess lock of the pair, account, address
	// or device), "resend" (per address), "passwordless" (code sign-in
	// starts per address), "resend_interval" (too soon after
	// the last code).
	Throttled(limit string)
}

type noCounter struct{}

func (noCounter) LoginStep(string, string, string) {}
func (noCounter) SignIn(string, string)            {}
func (noCounter) Throttled(string)                 {}

// counted counts a step that ended with err (nil: it passed) and, if it
// completed the sign-in, the sign-in.
func (f *Flow) counted(step, factor, door string, signedIn bool, err error) {
	outcome := "success"
	if err != nil {
		outcome = string(AsError(err).Code)
	}
	if factor == "" { // the step failed before its transaction was known
		factor = "UNKNOWN"
	}
	f.count.LoginStep(step, factor, outcome)
	if err == nil && signedIn {
		if step == "password" { // only an exempt account signs in at the password
			factor = MethodNone
		}
		f.count.SignIn(factor, door)
	}
}
