// Package hist records latency-like values in a log-linear histogram: exact
// below 128, then 128 linear buckets per power of two, so every recorded
// value is known to within 1/128 (0.8%) and every quantile to within half of
// that. Recording is lock-free, so thousands of receivers can share one.
package hist

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// subBits sets the precision: 2^subBits linear buckets per power of two.
const subBits = 7

const (
	subCount   = 1 << subBits
	maxShift   = 63 - subBits - 1 // values are non-negative int64s
	numBuckets = subCount + (maxShift+1)*subCount
)

// RelativeError bounds |reported-true|/true for any quantile: half a bucket.
const RelativeError = 0.5 / subCount

// Histogram counts non-negative values; negative ones count as 0. The zero
// value is ready to use and safe for concurrent Record, Snapshot and Swap.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	max    atomic.Int64
	minP1  atomic.Int64 // the smallest value plus one; 0 when none
}

// Record adds one value.
func (h *Histogram) Record(v int64) {
	v = min(max(v, 0), math.MaxInt64-1)
	h.counts[bucketOf(v)].Add(1)
	for m := h.max.Load(); v > m && !h.max.CompareAndSwap(m, v); m = h.max.Load() {
	}
	for m := h.minP1.Load(); (m == 0 || v+1 < m) && !h.minP1.CompareAndSwap(m, v+1); m = h.minP1.Load() {
	}
}

// Snapshot returns a copy of what has been recorded so far.
func (h *Histogram) Snapshot() *Snapshot {
	s := &Snapshot{counts: make([]uint64, numBuckets), max: h.max.Load(), min: h.minP1.Load() - 1}
	for i := range h.counts {
		s.counts[i] = h.counts[i].Load()
		s.total += s.counts[i]
	}
	s.reconcile()
	return s
}

// Swap returns what was recorded since the last Swap and starts afresh.
// A concurrent Record lands in exactly one of the two intervals.
func (h *Histogram) Swap() *Snapshot {
	s := &Snapshot{counts: make([]uint64, numBuckets), max: h.max.Swap(0), min: h.minP1.Swap(0) - 1}
	for i := range h.counts {
		s.counts[i] = h.counts[i].Swap(0)
		s.total += s.counts[i]
	}
	s.reconcile()
	return s
}

// reconcile widens min and max to cover the counted buckets: a Record
// racing a Swap may have counted its value before updating them.
func (s *Snapshot) reconcile() {
	if s.total == 0 {
		s.min, s.max = -1, 0
		return
	}
	first, last := -1, 0
	for i, c := range s.counts {
		if c > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if low, width := bounds(first); s.min < 0 || s.min >= low+width {
		s.min = low
	}
	if low, _ := bounds(last); s.max < low {
		s.max = low
	}
}

// Snapshot is a frozen histogram: quantiles, merging, no recording.
type Snapshot struct {
	counts   []uint64
	total    uint64
	min, max int64 // min is -1 when empty
}

// Count returns how many values were recorded.
func (s *Snapshot) Count() uint64 { return s.total }

// Max returns the largest value recorded, exactly; 0 when empty.
func (s *Snapshot) Max() int64 { return s.max }

// Min returns the smallest value recorded, exactly; 0 when empty.
func (s *Snapshot) Min() int64 { return max(s.min, 0) }

// Merge adds o's values to s.
func (s *Snapshot) Merge(o *Snapshot) {
	if s.counts == nil {
		s.counts = make([]uint64, numBuckets)
		s.min = -1
	}
	if o.total > 0 && (s.total == 0 || o.min < s.min) {
		s.min = o.min
	}
	for i, c := range o.counts {
		s.counts[i] += c
	}
	s.total += o.total
	s.max = max(s.max, o.max)
}

// Quantile returns the value at quantile q (0 ≤ q ≤ 1): the smallest
// recorded value v such that at least q of all values are ≤ v, to within
// RelativeError. It returns 0 for an empty snapshot.
func (s *Snapshot) Quantile(q float64) int64 {
	if s.total == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(s.total))), 1)
	var seen uint64
	for i, c := range s.counts {
		seen += c
		if seen >= rank {
			return min(max(midpoint(i), s.min), s.max)
		}
	}
	return s.max
}

// Mean returns the average of the recorded values, to within RelativeError.
func (s *Snapshot) Mean() float64 {
	if s.total == 0 {
		return 0
	}
	var sum float64
	for i, c := range s.counts {
		if c > 0 {
			sum += float64(c) * float64(midpoint(i))
		}
	}
	return sum / float64(s.total)
}

// bucketOf returns the bucket holding v ≥ 0.
func bucketOf(v int64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return subCount + shift*subCount + int(v>>shift) - subCount
}

// bounds returns the smallest value in bucket i and the bucket's width.
func bounds(i int) (low, width int64) {
	if i < subCount {
		return int64(i), 1
	}
	shift := (i - subCount) / subCount
	sub := int64(i-subCount)%subCount + subCount
	return sub << shift, 1 << shift
}

// midpoint returns the value reported for bucket i.
func midpoint(i int) int64 {
	low, width := bounds(i)
	return low + (width-1)/2
}
