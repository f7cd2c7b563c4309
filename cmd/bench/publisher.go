package main

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// sink is where messages are published: Redis directly or a node's API.
// publish may be called from several goroutines at once.
type sink interface {
	publish(ctx context.Context, channel string, data []byte) error
	close() error
}

// workerQueue bounds each publish worker's backlog; past it the publisher
// counts an overrun instead of piling up publishes.
const workerQueue = 1024

// publisher sends stamped messages to the plan's channels. Each channel
// always goes through the same worker, so its sequence numbers reach
// Redis in order.
type publisher struct {
	env     *runEnv
	sink    sink
	workers int
	payload int

	seqs     []uint64        // next sequence number - 1, per channel; owned by its worker
	newest   []atomic.Uint64 // newest sequence number published, per channel
	inWindow []atomic.Int64  // messages sent in the window, per channel
}

func newPublisher(env *runEnv, s sink) *publisher {
	n := len(env.plan.names)
	return &publisher{
		env: env, sink: s, workers: env.cfg.PublishWorkers, payload: env.cfg.Payload,
		seqs: make([]uint64, n), newest: make([]atomic.Uint64, n), inWindow: make([]atomic.Int64, n),
	}
}

// run publishes at rate per second to channels drawn from the plan (or
// from only, when it is not nil) until ctx ends, then waits for its workers.
func (p *publisher) run(ctx context.Context, rate float64, rng *rand.Rand, only []int) {
	queues := make([]chan int, p.workers)
	var wg sync.WaitGroup
	for w := range queues {
		queues[w] = make(chan int, workerQueue)
		wg.Go(func() {
			for ch := range queues[w] {
				p.publishOne(ctx, ch)
			}
		})
	}
	pace(ctx, rate, -1, func(int) {
		ch := p.env.plan.pick(rng)
		if only != nil {
			ch = only[rng.IntN(len(only))]
		}
		select {
		case queues[ch%p.workers] <- ch:
		default:
			p.env.m.overrun.Add(1)
		}
	})
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
}

// burst publishes count messages to each of channels as fast as it can,
// the channels concurrently over the workers.
func (p *publisher) burst(ctx context.Context, channels []int, count int) {
	var wg sync.WaitGroup
	for w := range p.workers {
		wg.Go(func() {
			for k := w; k < len(channels); k += p.workers {
				for range count {
					if ctx.Err() != nil {
						return
					}
					p.publishOne(ctx, channels[k])
				}
			}
		})
	}
	wg.Wait()
}

// publishOne stamps and sends the next message of channel ch. A failed
// publish still uses up its sequence number: it may have reached Redis.
func (p *publisher) publishOne(ctx context.Context, ch int) {
	p.seqs[ch]++
	st := stamp{Run: p.env.run, Seq: p.seqs[ch], Sent: time.Now().UnixNano()}
	data := appendPayload(make([]byte, 0, max(p.payload, 64)), st, p.payload)
	if err := p.sink.publish(ctx, p.env.plan.names[ch], data); err != nil {
		if ctx.Err() == nil {
			p.env.m.publishFailed.Add(1)
			p.env.cfg.Logger.Debug("failed to publish", "channel", p.env.plan.names[ch], "err", err)
		}
		return
	}
	p.env.m.published.Add(1)
	p.newest[ch].Store(st.Seq)
	if p.env.win.contains(st.Sent) {
		p.inWindow[ch].Add(1)
	}
}

// sentInWindow returns the messages sent in the window, per channel.
func (p *publisher) sentInWindow() []int64 {
	out := make([]int64, len(p.inWindow))
	for i := range p.inWindow {
		out[i] = p.inWindow[i].Load()
	}
	return out
}
