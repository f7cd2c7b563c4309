//go:build integration

package integration

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// published is one XADD as the publisher saw it.
type published struct {
	seq int
	at  time.Time // when the XADD was sent
	// acked: Redis answered with an entry ID. Otherwise the XADD failed or
	// timed out and may or may not have been applied: such a message is
	// neither required nor forbidden.
	acked bool
}

// publisher XADDs "<channel> <seq>" straight into Redis at a steady rate,
// round-robin over channels, as any Redis client in any language would.
type publisher struct {
	rdb      *redis.Client
	prefix   string
	channels []string
	every    time.Duration

	mu  sync.Mutex
	log map[string][]published
}

func newPublisher(addr string, channels []string, rate int) *publisher {
	return &publisher{
		rdb: redis.NewClient(&redis.Options{
			Addr: addr,
			// A retried XADD that had been applied would publish twice.
			MaxRetries:  -1,
			DialTimeout: 2 * time.Second,
			// Longer than a paused Redis: the XADD waits, then is answered.
			ReadTimeout:  20 * time.Second,
			WriteTimeout: 20 * time.Second,
			PoolSize:     1,
		}),
		prefix: "push:", channels: channels,
		every: time.Second / time.Duration(rate), log: map[string][]published{},
	}
}

// run publishes until ctx ends. A tick that comes while an XADD is still
// waiting is dropped, so a stalled Redis is not flooded when it returns.
func (p *publisher) run(ctx context.Context) {
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	seqs := map[string]int{}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ch := p.channels[i%len(p.channels)]
		seqs[ch]++
		p.publish(ch, seqs[ch])
	}
}

func (p *publisher) publish(ch string, seq int) {
	rec := published{seq: seq, at: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	err := p.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: p.prefix + ch, MaxLen: 10000, Approx: true,
		Values: []any{"data", fmt.Sprintf("%s %d", ch, seq)},
	}).Err()
	rec.acked = err == nil
	p.mu.Lock()
	p.log[ch] = append(p.log[ch], rec)
	p.mu.Unlock()
}

// sent returns what was published on channel.
func (p *publisher) sent(ch string) []published {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]published(nil), p.log[ch]...)
}

// lastAcked returns the highest acknowledged sequence number of channel.
func (p *publisher) lastAcked(ch string) int {
	log := p.sent(ch)
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].acked {
			return log[i].seq
		}
	}
	return 0
}

func (p *publisher) close() { p.rdb.Close() }
