package main

import (
	"cmp"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"

	"github.com/stile-id/stile/login"
)

// hashPool sizes the password hashing pool (login.Pool): every argon2id
// check holds 64 MiB while it runs, and anyone who can open /authorize can
// ask for one, so how many run at once is what bounds stile's memory.
type hashPool struct {
	Size   int           // hashes at once; 0: login.PoolSize(DefaultArgon2id, Memory)
	Memory int64         // bytes the pool may spend on hashes at once; 0: login.DefaultPoolMemory
	Wait   time.Duration // how long a check waits for a slot; 0: login.DefaultPoolWait
}

// size is the pool's size: the configured one, or what the memory budget
// and the cores allow for stile's own argon2id parameters.
func (p hashPool) size() int {
	if p.Size > 0 {
		return p.Size
	}
	return login.PoolSize(login.DefaultArgon2id, cmp.Or(p.Memory, login.DefaultPoolMemory))
}

// hashPoolOptions are serve's flags for the pool.
type hashPoolOptions struct {
	concurrency int
	memory      string // a byte size: 512MiB, 1GiB, or plain bytes
	wait        time.Duration
}

func (o *hashPoolOptions) register(f *pflag.FlagSet) {
	f.IntVar(&o.concurrency, "password-hash-concurrency", 0,
		"password hashes run at once (env STILE_PASSWORD_HASH_CONCURRENCY); 0: two per core, within --password-hash-memory")
	f.SetAnnotation("password-hash-concurrency", "env", []string{"STILE_PASSWORD_HASH_CONCURRENCY"})
	envFlag(f, &o.memory, "password-hash-memory", "512MiB", "STILE_PASSWORD_HASH_MEMORY",
		"memory the password hashes may use at once (each argon2id check takes 64MiB)")
	o.wait = login.DefaultPoolWait
	durationFlag(f, &o.wait, "password-hash-wait", "STILE_PASSWORD_HASH_WAIT",
		"how long a password check waits for a free hash before answering 503")
}

// pool checks the flags and returns the pool they describe. The memory
// budget is a promise: a concurrency whose hashes could use more than it is
// refused, rather than quietly exceeded.
func (o *hashPoolOptions) pool() (hashPool, error) {
	m, err := humanize.ParseBytes(o.memory)
	if err == nil && m > 1<<50 {
		err = fmt.Errorf("%s is more than a petabyte", o.memory)
	}
	if err != nil {
		return hashPool{}, fmt.Errorf("--password-hash-memory: %w", err)
	}
	per := login.DefaultArgon2id.MemoryBytes()
	p := hashPool{Size: o.concurrency, Memory: int64(m), Wait: o.wait}
	switch {
	case p.Memory < per:
		return p, fmt.Errorf("--password-hash-memory %s is less than one password hash needs (%s)", o.memory, humanize.IBytes(uint64(per)))
	case o.concurrency < 0 || o.concurrency > 4096:
		return p, fmt.Errorf("--password-hash-concurrency must be between 0 (derive) and 4096, not %d", o.concurrency)
	case int64(o.concurrency)*per > p.Memory:
		return p, fmt.Errorf("--password-hash-concurrency %d needs %s, more than --password-hash-memory %s: raise the memory or lower the concurrency",
			o.concurrency, humanize.IBytes(uint64(int64(o.concurrency)*per)), o.memory)
	case o.wait <= 0 || o.wait > 30*time.Second:
		return p, fmt.Errorf("--password-hash-wait must be more than 0 and at most 30s, not %s", o.wait)
	}
	return p, nil
}

// softMemoryLimit is the Go runtime's soft memory limit for a pool: what
// its hashes may hold at once plus headroom for everything else. Each
// argon2id run leaves 64 MiB of garbage; with the default GOGC the heap
// grows to twice its last live size before the collector runs, so a
// saturated pool of 4 was measured keeping 530 MiB resident without the
// limit and 280-375 MiB with it (BenchmarkPasswordFlood). Collecting early
// is cheap here: argon2's blocks hold no pointers, so marking skips them.
func softMemoryLimit(p hashPool) int64 {
	return int64(p.size())*login.DefaultArgon2id.MemoryBytes() + memoryHeadroom
}

// memoryHeadroom is what stile needs beside the hashes: its own heap (about
// 30 MiB at rest), connections, the database driver.
const memoryHeadroom = 128 << 20

// limitMemory sets softMemoryLimit unless the operator chose a limit
// (GOMEMLIMIT), and returns what restores the previous one.
func limitMemory(p hashPool, log *slog.Logger) (restore func()) {
	if cur := debug.SetMemoryLimit(-1); cur != math.MaxInt64 {
		log.Info("password hashing pool", "size", p.size(), "wait", cmp.Or(p.Wait, login.DefaultPoolWait),
			"soft_memory_limit", humanize.IBytes(uint64(cur)), "from", "GOMEMLIMIT")
		return func() {}
	}
	limit := softMemoryLimit(p)
	old := debug.SetMemoryLimit(limit)
	log.Info("password hashing pool", "size", p.size(), "wait", cmp.Or(p.Wait, login.DefaultPoolWait),
		"soft_memory_limit", humanize.IBytes(uint64(limit)))
	return func() { debug.SetMemoryLimit(old) }
}
