package op

import (
	"net/http"
	"runtime"
	"time"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Admission bounds how many token-path requests (token, introspection,
// revocation, userinfo) run at once; the rest wait their turn in arrival
// order. Without it, on a saturated core, Go's scheduler serves runnable
// goroutines in no particular order: a goroutine back from a file or
// network system call joins the global run queue, which a busy processor
// looks at one schedule in 61, so at 32 concurrent refreshes a few waited
// seconds while the median took milliseconds (p99 ÷ p50 of 20 and more).
// A few requests at a time, handed a slot first come, first served by a
// channel, keep the cores as busy and make the wait a fair queue.
type Admission struct {
	Slots int           // requests at once; 0: DefaultAdmission's
	Wait  time.Duration // how long a request waits for a slot before 503; 0: DefaultAdmission's
}

// DefaultAdmission: four requests per core keep a core busy while others
// wait on the database (a round trip to PostgreSQL, SQLite's one writer);
// a request that waited five seconds is better answered 503 with
// Retry-After than kept until its client gives up.
func DefaultAdmission() Admission {
	return Admission{Slots: max(4, 4*runtime.GOMAXPROCS(0)), Wait: 5 * time.Second}
}

type admission struct {
	slots chan struct{}
	wait  time.Duration
	count Counter
}

func newAdmission(a Admission, count Counter) *admission {
	def := DefaultAdmission()
	if a.Slots <= 0 {
		a.Slots = def.Slots
	}
	if a.Wait <= 0 {
		a.Wait = def.Wait
	}
	return &admission{slots: make(chan struct{}, a.Slots), wait: a.Wait, count: count}
}

// handler runs next in a slot. It sits inside the guards that read the
// form, so a client that sends its body slowly holds no slot meanwhile.
func (a *admission) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.take(r) {
			a.count.Throttled("busy")
			setRetryAfter(w, time.Second)
			httphelper.MarshalJSONWithStatus(w, &oidc.Error{ErrorType: temporarilyUnavailable,
				Description: "the server is busy; retry after 1 s"}, http.StatusServiceUnavailable)
			return
		}
		defer func() { <-a.slots }()
		next.ServeHTTP(w, r)
	})
}

func (a *admission) take(r *http.Request) bool {
	select {
	case a.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-r.Context().Done():
		return false
	}
}
