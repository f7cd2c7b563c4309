package main

import (
	"sync/atomic"
	"testing"
	"time"
)

// A storm's outages are judged less each client's own backoff: a client
// that waited long in its backoff is within the bound, one that resumed
// late after a short wait is not, and one that never resumed is counted
// in neither.
func TestOutageLessItsBackoff(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	n := 3
	w := &drainWatch{ended: make([]atomic.Int64, n), ready: make([]atomic.Int64, n),
		resumed: make([]atomic.Int64, n), waited: make([]atomic.Int64, n)}
	for i, c := range []struct{ end, resumed, waited time.Duration }{
		{10 * time.Millisecond, 3 * time.Second, 1500 * time.Millisecond}, // 1.49 s beyond its wait
		{10 * time.Millisecond, 2500 * time.Millisecond, 100 * time.Millisecond},
		{10 * time.Millisecond, 0, 0},
	} {
		w.ended[i].Store(at(c.end))
		w.ready[i].Store(at(c.end + c.waited))
		if c.resumed > 0 {
			w.resumed[i].Store(at(c.resumed))
			w.waited[i].Store(c.waited.Nanoseconds())
		}
	}
	var rep DrainReport
	w.fill(&rep, t0)
	if rep.Resumed != 2 || rep.WithinBackoffBound != 1 {
		t.Fatalf("resumed %d, within the bound %d; want 2 and 1", rep.Resumed, rep.WithinBackoffBound)
	}
	if got := rep.BeyondBackoffMs.Max; got < 2380 || got > 2400 {
		t.Fatalf("the longest beyond its backoff: %.0f ms, want 2390", got)
	}
}
