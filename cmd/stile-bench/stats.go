package main

import (
	"math"
	"slices"
	"time"
)

// percentile is the nearest-rank percentile (p in 0..100) of sorted
// samples: the smallest sample that at least p % of the samples do not
// exceed. Nearest rank never invents a latency nobody saw.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// latencies summarises one step's request times.
type latencies struct {
	P50, P99, Max time.Duration
}

func summarise(samples []time.Duration) latencies {
	s := slices.Clone(samples)
	slices.Sort(s)
	if len(s) == 0 {
		return latencies{}
	}
	return latencies{P50: percentile(s, 50), P99: percentile(s, 99), Max: s[len(s)-1]}
}

// ms is a duration in milliseconds, for the report.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
