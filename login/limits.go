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

	// Codes sent by email or SMS, per user and per destination address or
	// number, across transactions: two windows, a short and a long one.
	SendsPerMinute storage.Rate
	SendsPerHour   storage.Rate
}

// DefaultLimits are generous to an office or a carrier behind one address,
// and far below what credential stuffing needs.
var DefaultLimits = Limits{
	PasswordPerAddress: storage.Rate{Limit: 30, Per: time.Minute},
	OTPPerAddress:      storage.Rate{Limit: 30, Per: time.Minute},
	ResendPerAddress:   storage.Rate{Limit: 10, Per: time.Minute},
	SendsPerMinute:     storage.Rate{Limit: 3, Per: time.Minute},
	SendsPerHour:       storage.Rate{Limit: 10, Per: time.Hour},
}
