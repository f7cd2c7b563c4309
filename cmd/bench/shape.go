package main

import (
	"slices"
	"time"
)

// maxInWindow returns the most of times that fall in any one window
// [t, t+w): the peak of a reconnect storm at that resolution.
func maxInWindow(times []time.Duration, w time.Duration) int {
	sorted := slices.Sorted(slices.Values(times))
	best, lo := 0, 0
	for hi, t := range sorted {
		for sorted[lo] <= t-w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// perInterval counts times in consecutive intervals of step from 0 to the
// latest one; times before 0 count in the first.
func perInterval(times []time.Duration, step time.Duration) []int {
	if len(times) == 0 {
		return nil
	}
	out := make([]int, int(slices.Max(times)/step)+1)
	for _, t := range times {
		out[max(int(t/step), 0)]++
	}
	return out
}
