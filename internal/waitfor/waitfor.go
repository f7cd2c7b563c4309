// Package waitfor polls for a condition, for the tools that start and watch
// servers: a loop with a deadline instead of a sleep and a hope.
package waitfor

import (
	"context"
	"time"
)

// Until polls cond every interval until it holds, ctx ends or timeout
// passes, and returns nil or the context's error.
func Until(ctx context.Context, timeout, every time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// Fataler is the part of testing.TB that Check needs.
type Fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Check polls fn until it returns nil, failing the test with fn's last
// error once total has passed: a bound on a deadlock, not a claim about
// speed.
func Check(t Fataler, total time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", total, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
