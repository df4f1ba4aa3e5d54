package login

import (
	"time"

	"github.com/stile-id/stile/storage"
)

// Limits bound what one source address, one account and one destination
// can make stile do. They are counted in the database (storage.Hit), so
// every instance shares them. The source address is the one the request
// context carries (clientip.From): the TCP peer, or behind a trusted proxy
// the client it names; in direct mode the end user's X-End-User-IP.
type Limits struct {
	PasswordPerAddress storage.Rate // password checks per source address, on every door
	OTPPerAddress      storage.Rate // second-step codes per source address
	ResendPerAddress   storage.Rate // code resends per source address
	ForgotPerAddress   storage.Rate // forgot-password requests per source address

	// Consecutive failed guesses (passwords and codes) before a lock; see
	// login/throttle.go. Zero: the default.
	FailuresPerPair    int           // per account and source address, then 30 s doubling to 15 min
	FailuresPerAccount int           // per account from anywhere, except browsers with its device cookie
	AccountLock        time.Duration // the account's lock for each failure at or beyond FailuresPerAccount
	FailuresPerAddress int           // per source address, any account, then 30 s doubling to 15 min

	// Codes sent by email or SMS, per user and per destination address or
	// number, across transactions: two windows, a short and a long one.
	SendsPerMinute storage.Rate
	SendsPerHour   storage.Rate

	// SignupsPerAddress bounds the pending sign-ups (login/signup.go) one
	// source address can make stile store; zero: no limit.
	SignupsPerAddress storage.Rate
}

// DefaultLimits are generous to an office or a carrier behind one address,
// and far below what credential stuffing needs.
var DefaultLimits = Limits{
	PasswordPerAddress: storage.Rate{Limit: 30, Per: time.Minute},
	OTPPerAddress:      storage.Rate{Limit: 30, Per: time.Minute},
	ResendPerAddress:   storage.Rate{Limit: 10, Per: time.Minute},
	ForgotPerAddress:   storage.Rate{Limit: 10, Per: time.Minute},
	FailuresPerPair:    5,
	FailuresPerAccount: 100, // NIST SP 800-63B §5.2.2: at most 100 consecutive failures per account
	AccountLock:        15 * time.Minute,
	FailuresPerAddress: 20, // more than a pair's: an office or a carrier puts many users behind one address
	SendsPerMinute:     storage.Rate{Limit: 3, Per: time.Minute},
	SendsPerHour:       storage.Rate{Limit: 10, Per: time.Hour},
	SignupsPerAddress:  storage.Rate{Limit: 20, Per: time.Hour},
}

// withLockDefaults fills the failure counts a caller left zero.
func (l Limits) withLockDefaults() Limits {
	d := DefaultLimits
	if l.FailuresPerPair <= 0 {
		l.FailuresPerPair = d.FailuresPerPair
	}
	if l.FailuresPerAccount <= 0 {
		l.FailuresPerAccount = d.FailuresPerAccount
	}
	if l.AccountLock <= 0 {
		l.AccountLock = d.AccountLock
	}
	if l.FailuresPerAddress <= 0 {
		l.FailuresPerAddress = d.FailuresPerAddress
	}
	return l
}
