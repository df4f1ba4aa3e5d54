package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample is every percentile", []time.Duration{7}, 99, 7},
		{"p50 of 1..100 is 50", hundred, 50, 50 * time.Millisecond},
		{"p99 of 1..100 is 99", hundred, 99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"p0 is the min", hundred, 0, time.Millisecond},
		{"nearest rank rounds up: p50 of 4 is the 2nd", []time.Duration{1, 2, 3, 4}, 50, 2},
		{"p99 of 4 is the 4th", []time.Duration{1, 2, 3, 4}, 99, 4},
	} {
		if got := percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("%s: percentile(p%.0f) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
}

// TestSummariseSorts: samples arrive in completion order, not sorted.
func TestSummariseSorts(t *testing.T) {
	samples := []time.Duration{9, 1, 5, 3, 7}
	l := summarise(samples)
	if l.P50 != 5 || l.P99 != 9 || l.Max != 9 {
		t.Fatalf("summarise(%v) = %+v, want p50 5, p99 9, max 9", samples, l)
	}
	if samples[0] != 9 {
		t.Fatal("summarise reordered the caller's samples")
	}
}
