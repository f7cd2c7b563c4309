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
