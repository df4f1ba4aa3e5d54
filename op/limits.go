package op

import (
	"time"

	"github.com/stile-id/stile/storage"
)

// Limits bound what one source address (clientip.From) can make the
// provider do, counted in the database so every instance shares them.
type Limits struct {
	AuthorizePerAddress storage.Rate // authorization requests stored per source address
	TokenPerAddress     storage.Rate // token, introspection, revocation and authorization challenge calls per source address
}

// DefaultLimits leave room for a busy backend behind one address.
var DefaultLimits = Limits{
	AuthorizePerAddress: storage.Rate{Limit: 60, Per: time.Minute},
	TokenPerAddress:     storage.Rate{Limit: 1200, Per: time.Minute},
}
