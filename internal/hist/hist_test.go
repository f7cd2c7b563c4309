package hist

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// exactQuantile is the definition Quantile approximates: the smallest
// value with at least q of all values at or below it.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := max(int(math.Ceil(q*float64(len(sorted)))), 1)
	return sorted[rank-1]
}

func within(got, want int64, rel float64) bool {
	return math.Abs(float64(got-want)) <= rel*float64(want)+0.5
}

func TestQuantilesWithinRelativeError(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"uniform":   func() int64 { return rng.Int64N(10_000_000) },
		"lognormal": func() int64 { return int64(math.Exp(rng.NormFloat64()*2 + 13)) },
		"small":     func() int64 { return rng.Int64N(300) },
		"huge":      func() int64 { return rng.Int64N(math.MaxInt64) },
	}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			var h Histogram
			vals := make([]int64, 100_000)
			for i := range vals {
				vals[i] = gen()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			s := h.Snapshot()
			for _, q := range []float64{0, 0.001, 0.5, 0.9, 0.99, 0.999, 1} {
				got, want := s.Quantile(q), exactQuantile(vals, q)
				if !within(got, want, RelativeError) {
					t.Errorf("q=%v: got %d, want %d ± %.2f%%", q, got, want, 100*RelativeError)
				}
			}
			if s.Max() != vals[len(vals)-1] {
				t.Errorf("max %d, want %d", s.Max(), vals[len(vals)-1])
			}
			if s.Count() != uint64(len(vals)) {
				t.Errorf("count %d, want %d", s.Count(), len(vals))
			}
		})
	}
}

func TestSmallValuesAreExact(t *testing.T) {
	t.Parallel()
	var h Histogram
	for v := range int64(128) {
		h.Record(v)
	}
	s := h.Snapshot()
	for v := range int64(128) {
		q := float64(v+1) / 128
		if got := s.Quantile(q); got != v {
			t.Errorf("quantile %v = %d, want %d", q, got, v)
		}
	}
}

func TestBucketsCoverEveryValue(t *testing.T) {
	t.Parallel()
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1 << 40, math.MaxInt64} {
		i := bucketOf(v)
		low, width := bounds(i)
		if v < low || v-low >= width {
			t.Errorf("value %d in bucket %d [%d, +%d)", v, i, low, width)
		}
		if i >= numBuckets {
			t.Errorf("value %d in bucket %d of %d", v, i, numBuckets)
		}
	}
	for i := 1; i < numBuckets; i++ {
		pl, pw := bounds(i - 1)
		if l, _ := bounds(i); l != pl+pw {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, l, pl+pw)
		}
	}
}

func TestMergeEqualsRecordingEverything(t *testing.T) {
	t.Parallel()
	var a, b, all Histogram
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 10_000 {
		v := rng.Int64N(1 << 30)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
		all.Record(v)
	}
	var merged Snapshot
	merged.Merge(a.Snapshot())
	merged.Merge(b.Snapshot())
	want := all.Snapshot()
	if merged.Count() != want.Count() || merged.Max() != want.Max() || merged.Min() != want.Min() {
		t.Fatalf("merged count/max %d/%d, want %d/%d", merged.Count(), merged.Max(), want.Count(), want.Max())
	}
	for _, q := range []float64{0.1, 0.5, 0.99, 0.999} {
		if merged.Quantile(q) != want.Quantile(q) {
			t.Errorf("q=%v: merged %d, want %d", q, merged.Quantile(q), want.Quantile(q))
		}
	}
}

func TestSwapLosesNothingUnderConcurrency(t *testing.T) {
	t.Parallel()
	var h Histogram
	var total Snapshot
	var wg sync.WaitGroup
	const writers, each = 8, 20_000
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				h.Record(int64(w*each + i))
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		total.Merge(h.Swap())
	}
	total.Merge(h.Swap())
	if total.Count() != writers*each {
		t.Fatalf("counted %d, want %d", total.Count(), writers*each)
	}
}

func TestOneValueIsExact(t *testing.T) {
	t.Parallel()
	var h Histogram
	h.Record(9_481_733)
	s := h.Snapshot()
	for _, q := range []float64{0, 0.5, 0.99, 1} {
		if got := s.Quantile(q); got != 9_481_733 {
			t.Errorf("q=%v: %d", q, got)
		}
	}
	if s.Min() != 9_481_733 || s.Max() != 9_481_733 {
		t.Errorf("min %d max %d", s.Min(), s.Max())
	}
	h.Record(5)
	if m := h.Swap().Min(); m != 5 {
		t.Errorf("min %d after recording 5", m)
	}
	if s := h.Swap(); s.Count() != 0 || s.Min() != 0 || s.Max() != 0 {
		t.Errorf("swapped-out histogram still holds %d values, min %d, max %d", s.Count(), s.Min(), s.Max())
	}
}

func TestEmptyAndMean(t *testing.T) {
	t.Parallel()
	var h Histogram
	s := h.Snapshot()
	if s.Quantile(0.5) != 0 || s.Mean() != 0 || s.Max() != 0 {
		t.Fatal("empty snapshot is not all zero")
	}
	h.Record(-5) // counts as 0
	h.Record(1000)
	h.Record(3000)
	if m := h.Snapshot().Mean(); !within(int64(m), 4000/3, RelativeError) {
		t.Fatalf("mean %v, want about %v", m, 4000/3)
	}
}
