package login

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBusy is what a Pool returns when every slot stayed taken for its whole
// wait. The login answers it with CodeBusy (503 and Retry-After).
var ErrBusy = errors.New("every password check is busy")

// Pool defaults: how long a password check waits for a slot, the memory the
// pool may spend on hashes at once, and what a refused caller is told to
// wait before trying again.
const (
	DefaultPoolWait   = time.Second
	DefaultPoolMemory = 512 << 20 // bytes
	busyRetryAfter    = 2 * time.Second
)

// Pool bounds how many password hashes run at once. Each argon2id run
// allocates its whole memory parameter (64 MiB by default), and a password
// check needs no credential — an anonymous /authorize gives the
// authRequestID — so without a bound anyone could make stile allocate
// 64 MiB per request until it runs out of memory. A check waits for a slot
// at most the pool's wait and then fails fast with ErrBusy: excess load gets
// a quick 503, never a queue that grows with the attack. Every hash goes
// through the pool, the unknown-user stand-in included, so an unknown name
// costs and answers exactly like a known one.
//
// Pool is itself a Hasher, so the login does not know it is there.
type Pool struct {
	hasher Hasher
	slots  chan struct{}
	wait   time.Duration
	log    *slog.Logger // nil: no warnings

	busy     atomic.Int64 // checks refused with ErrBusy
	lastWarn atomic.Int64 // unix nanoseconds of the last warning, to keep a flood out of the log

	// Waited, if set (before the pool is used), hears how long each check
	// waited for a slot: zero when one was free, the whole wait when refused.
	Waited func(time.Duration)

	// FreeIdle, if set (before the pool is used), gives the hashes' memory
	// back to the operating system once no hash has run for that long. The
	// collector frees each hash's 64 MiB soon enough, but the runtime keeps
	// the pages for reuse, so a server that signed people in an hour ago
	// would still hold the pool's peak; a short idle period keeps a busy
	// pool from paying for a full collection after every hash.
	FreeIdle time.Duration
	free     func() // debug.FreeOSMemory; a test counts the calls
	idleMu   sync.Mutex
	idle     *time.Timer
}

// NewPool wraps h in a pool of size slots (at least one) whose checks wait
// at most wait for a slot (zero: DefaultPoolWait).
func NewPool(h Hasher, size int, wait time.Duration, log *slog.Logger) *Pool {
	if wait <= 0 {
		wait = DefaultPoolWait
	}
	return &Pool{hasher: h, slots: make(chan struct{}, max(size, 1)), wait: wait, log: log, free: debug.FreeOSMemory}
}

// PoolSize is the default size of a pool for hashes of a's parameters: two
// per core — argon2id with one lane keeps one core busy, and a second run
// per core hides the scheduling gaps — but never more than budget bytes of
// hash memory at once, and never fewer than one.
func PoolSize(a Argon2id, budget int64) int {
	n := max(2, 2*runtime.GOMAXPROCS(0))
	if per := a.MemoryBytes(); per > 0 {
		n = min(n, int(budget/per))
	}
	return max(n, 1)
}

// Size is the number of hashes that may run at once.
func (p *Pool) Size() int { return cap(p.slots) }

// InUse is the number of hashes running now.
func (p *Pool) InUse() int { return len(p.slots) }

// Busy is how many checks the pool has refused.
func (p *Pool) Busy() int64 { return p.busy.Load() }

// Hash hashes password in a slot.
func (p *Pool) Hash(password string) (string, error) {
	if err := p.acquire(); err != nil {
		return "", err
	}
	defer p.release()
	return p.hasher.Hash(password)
}

// Verify checks password against encoded in a slot.
func (p *Pool) Verify(encoded, password string) (bool, error) {
	if err := p.acquire(); err != nil {
		return false, err
	}
	defer p.release()
	return p.hasher.Verify(encoded, password)
}

// StandIn makes the unknown-user stand-in (see NewFlow) with the wrapped
// hasher, outside the pool: it happens once, at start.
func (p *Pool) StandIn() (string, error) { return standIn(p.hasher) }

func (p *Pool) acquire() error {
	select {
	case p.slots <- struct{}{}:
		p.waited(0)
		return nil
	default:
	}
	start := time.Now()
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		p.waited(time.Since(start))
		return nil
	case <-t.C:
	}
	p.waited(time.Since(start))
	n := p.busy.Add(1)
	p.warn(n)
	return fmt.Errorf("password hashing pool of %d: %w", p.Size(), ErrBusy)
}

func (p *Pool) release() {
	<-p.slots
	if p.FreeIdle > 0 && len(p.slots) == 0 {
		p.armFree()
	}
}

// armFree (re)starts the idle timer: it fires FreeIdle after the last hash.
func (p *Pool) armFree() {
	p.idleMu.Lock()
	defer p.idleMu.Unlock()
	if p.idle == nil {
		p.idle = time.AfterFunc(p.FreeIdle, p.freeIfIdle)
		return
	}
	p.idle.Reset(p.FreeIdle)
}

// freeIfIdle returns memory unless a hash started since the timer was set;
// that hash's release arms the timer again.
func (p *Pool) freeIfIdle() {
	if p.InUse() == 0 {
		p.free()
	}
}

func (p *Pool) waited(d time.Duration) {
	if p.Waited != nil {
		p.Waited(d)
	}
}

// warn logs a full pool at most once a second: an operator should know the
// pool is refusing sign-ins, but a flood must not become a log flood.
func (p *Pool) warn(refused int64) {
	if p.log == nil {
		return
	}
	now := time.Now().UnixNano()
	last := p.lastWarn.Load()
	if now-last < int64(time.Second) || !p.lastWarn.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn("password hashing pool is full: refusing password checks with 503",
		"size", p.Size(), "wait", p.wait, "refused_total", refused)
}

var _ Hasher = (*Pool)(nil)
