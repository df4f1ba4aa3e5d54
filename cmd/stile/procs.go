package main

import (
	"log/slog"
	"os"
	"runtime"
)

// atLeastTwoProcs gives the Go scheduler a second processor when it found
// one CPU (a one-core container, or taskset), unless GOMAXPROCS is set.
// With one processor, a goroutine back from a system call (SQLite's file
// reads and writes, a log line) finds no processor free and joins the
// global run queue, which a busy processor serves once in 61 schedules: at
// 32 concurrent refreshes on one core a few requests waited 1.4 s while
// the median took 90 ms. A second processor picks such a goroutine up at
// once; measured with stile-bench on one pinned core, p99 ÷ p50 fell from
// 19 to 1.4 at the same throughput. It is called after the hashing pool
// and the token path's admission are sized, which count real cores.
func atLeastTwoProcs(log *slog.Logger) {
	if os.Getenv("GOMAXPROCS") != "" || runtime.GOMAXPROCS(0) > 1 {
		return
	}
	runtime.GOMAXPROCS(2)
	log.Info("one CPU: running the Go scheduler with two processors", "GOMAXPROCS", 2)
}
