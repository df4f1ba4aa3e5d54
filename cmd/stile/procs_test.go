package main

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
)

// One CPU gets a second scheduler processor; more CPUs, or an operator's
// GOMAXPROCS, are left alone.
func TestAtLeastTwoProcs(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(1)
	atLeastTwoProcs(log)
	if n := runtime.GOMAXPROCS(0); n != 2 {
		t.Errorf("one CPU: GOMAXPROCS %d, want 2", n)
	}
	runtime.GOMAXPROCS(3)
	atLeastTwoProcs(log)
	if n := runtime.GOMAXPROCS(0); n != 3 {
		t.Errorf("three CPUs: GOMAXPROCS %d, want 3 (unchanged)", n)
	}
	t.Setenv("GOMAXPROCS", "1")
	runtime.GOMAXPROCS(1)
	atLeastTwoProcs(log)
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("GOMAXPROCS=1 set by the operator: %d, want 1", n)
	}
}
