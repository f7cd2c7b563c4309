// Package backoff paces retry loops: exponential, with full jitter, so
// that the nodes (and clients) that failed together do not retry together,
// and sleeps that end with their context.
//
// Hand-written rather than github.com/cenkalti/backoff (in the module
// graph): the loops here retry until their context ends, or pace a loop
// that never stops (rejoining a cluster, re-reading channels), where that
// library's elapsed-time cut-off and operation wrapper get in the way, and
// its randomization is a band around the interval, not full jitter.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is one retry loop's pace: each Next is a random wait up to a
// ceiling that doubles from Min to Max ("full jitter"). The zero value is
// not usable; make one with New. It is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	ceil     time.Duration
}

// New returns a backoff from min to max.
func New(min, max time.Duration) *Backoff {
	return &Backoff{Min: min, Max: max, ceil: min}
}

// Next returns how long to wait before the next attempt: uniform in
// [0, ceiling), where the ceiling doubles after every attempt from Min up
// to Max. The spread is what breaks up retries that would synchronise; a
// short draw costs one early attempt, after which the ceiling is higher.
func (b *Backoff) Next() time.Duration {
	c := max(b.ceil, 1)
	b.ceil = min(2*b.ceil, b.Max)
	return rand.N(c)
}

// Reset starts the pace again from Min, after a success.
func (b *Backoff) Reset() { b.ceil = b.Min }

// Sleep waits Next, or until ctx ends; it reports whether the wait ran out
// (false: ctx ended).
func (b *Backoff) Sleep(ctx context.Context) bool { return Sleep(ctx, b.Next()) }

// Sleep waits d, or until ctx ends; it reports whether the wait ran out
// (false: ctx ended).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
