package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
)

// rateValue is a flag holding a storage.Rate written "N/DURATION":
// "60/1m", "1200/1m", "10/30s"; a bare unit means one of it ("60/m"). N = 0
// turns the limit off where the caller allows that.
type rateValue struct{ r *storage.Rate }

func (v rateValue) Type() string { return "rate" }

func (v rateValue) String() string {
	if v.r == nil {
		return ""
	}
	d := v.r.Per
	switch {
	case d > 0 && d%time.Hour == 0:
		return fmt.Sprintf("%d/%dh", v.r.Limit, d/time.Hour)
	case d > 0 && d%time.Minute == 0:
		return fmt.Sprintf("%d/%dm", v.r.Limit, d/time.Minute)
	}
	return fmt.Sprintf("%d/%s", v.r.Limit, d)
}

func (v rateValue) Set(s string) error {
	r, err := parseRate(s)
	if err != nil {
		return err
	}
	*v.r = r
	return nil
}

// parseRate parses "N/DURATION". The window is between 1s and
// storage.RateWindowMax: counters older than that are swept away.
func parseRate(s string) (storage.Rate, error) {
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return storage.Rate{}, fmt.Errorf("rate %q: want N/DURATION, e.g. 60/1m", s)
	}
	limit, err := strconv.Atoi(n)
	if err != nil || limit < 0 {
		return storage.Rate{}, fmt.Errorf("rate %q: %q is not a count", s, n)
	}
	if per != "" && strings.Trim(per, "smh") == "" {
		per = "1" + per
	}
	d, err := time.ParseDuration(per)
	if err != nil {
		return storage.Rate{}, fmt.Errorf("rate %q: %w", s, err)
	}
	if d < time.Second || d > storage.RateWindowMax {
		return storage.Rate{}, fmt.Errorf("rate %q: the window must be between 1s and %s", s, storage.RateWindowMax)
	}
	return storage.Rate{Limit: limit, Per: d}, nil
}

// rateFlag defines a rate flag, defaulting to *p, with an environment
// fallback.
func rateFlag(fs *pflag.FlagSet, p *storage.Rate, name, env, usage string) {
	fs.Var(rateValue{p}, name, fmt.Sprintf("%s (env %s)", usage, env))
	fs.SetAnnotation(name, "env", []string{env})
}

// errAuthorizeRateOff: /authorize stores a row for every anonymous request,
// so its limit cannot be turned off, only raised.
var errAuthorizeRateOff = errors.New("--authorize-rate cannot be 0: every authorization request stores a row; raise it instead")

// registerLoginLimits defines the flags of the sign-in's limits per source
// address and per code destination (login.Limits).
func registerLoginLimits(f *pflag.FlagSet, l *login.Limits) {
	rateFlag(f, &l.PasswordPerAddress, "password-rate", "STILE_PASSWORD_RATE",
		"password checks per source address, on every door, N/DURATION; 0/1m: off")
	rateFlag(f, &l.OTPPerAddress, "code-rate", "STILE_CODE_RATE",
		"one-time codes checked per source address, N/DURATION; 0/1m: off")
	rateFlag(f, &l.ResendPerAddress, "resend-rate", "STILE_RESEND_RATE",
		"code resends per source address, N/DURATION; 0/1m: off")
	rateFlag(f, &l.ForgotPerAddress, "forgot-rate", "STILE_FORGOT_RATE",
		"forgot-password requests per source address, N/DURATION; 0/1m: off")
	rateFlag(f, &l.SendsPerMinute, "send-rate", "STILE_SEND_RATE",
		"codes sent by email or SMS per user and per destination, N/DURATION; 0/1m: off")
	rateFlag(f, &l.SendsPerHour, "send-rate-long", "STILE_SEND_RATE_LONG",
		"a second, longer window for the same, N/DURATION; 0/1h: off")
	rateFlag(f, &l.SignupsPerAddress, "signup-rate", "STILE_SIGNUP_RATE",
		"self-service sign-ups started per source address, N/DURATION; 0/1h: off")
}
