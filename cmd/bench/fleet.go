package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pushcluster/pushcluster/internal/waitfor"
)

// fleet is every client of a run, started at a ramp and stopped together.
type fleet struct {
	env     *runEnv
	clients []*client

	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// newFleet makes sse SSE (or, with over, that transport's) and ws
// WebSocket clients, interleaved so that a ramp opens both kinds at once,
// each on its channel of the plan.
func newFleet(env *runEnv, over string, sse, ws int, rng *rand.Rand) *fleet {
	f := &fleet{env: env}
	total := sse + ws
	for i := range total {
		tr := over
		if ws > 0 && (i+1)*ws/total > i*ws/total {
			tr = transportWS
		}
		f.clients = append(f.clients, &client{i: i, transport: tr, channel: env.plan.forClient(i, rng)})
	}
	return f
}

// start opens the clients at ramp per second (0: all at once) and returns;
// the clients run until stop.
func (f *fleet) start(ctx context.Context, ramp float64) {
	ctx, f.cancel = context.WithCancel(ctx)
	f.wg.Go(func() {
		pace(ctx, ramp, len(f.clients), func(i int) {
			c := f.clients[i]
			f.wg.Go(func() { c.serve(ctx, f.env) })
		})
	})
}

// stop closes every client and waits for their goroutines.
func (f *fleet) stop() {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
}

// waitReady waits until every client is subscribed, or timeout.
func (f *fleet) waitReady(ctx context.Context, timeout time.Duration) error {
	want := int64(len(f.clients))
	err := waitfor.Until(ctx, timeout, 50*time.Millisecond, func() bool { return f.env.m.connected.Load() >= want })
	if err != nil {
		return fmt.Errorf("bench: %d of %d clients subscribed after %s: %w", f.env.m.connected.Load(), want, timeout, err)
	}
	return nil
}

// subscribers counts the clients of each channel.
func (f *fleet) subscribers() []int {
	n := make([]int, len(f.env.plan.names))
	for _, c := range f.clients {
		n[c.channel]++
	}
	return n
}

// pace calls fn(0), fn(1), … fn(n-1) at rate calls per second (all at once
// when rate is 0; forever when n < 0) until ctx ends.
func pace(ctx context.Context, rate float64, n int, fn func(i int)) {
	if rate <= 0 {
		for i := 0; (n < 0 || i < n) && ctx.Err() == nil; i++ {
			fn(i)
		}
		return
	}
	start := time.Now()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	done := 0
	for n < 0 || done < n {
		due := int(time.Since(start).Seconds()*rate) + 1
		for ; done < due && (n < 0 || done < n); done++ {
			fn(done)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
