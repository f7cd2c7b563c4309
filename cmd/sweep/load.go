package main

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// publishSlice is how often the publisher sends its due XADDs, in one
// pipeline, so that round trips never limit the rate.
const publishSlice = 10 * time.Millisecond

// seedBatch is how many XADDs one seeding pipeline carries.
const seedBatch = 1000

// publisher sends plain XADDs, as any Redis client would, at a fixed rate
// to channels chosen uniformly at random.
type publisher struct {
	rdb  redis.UniversalClient
	keys []string // stream key of each channel
	rate int
	rng  *rand.Rand

	counts []uint32 // XADDs acknowledged, per channel
	seq    int64    // XADDs issued
	sent   int64    // XADDs acknowledged
	failed int64
}

func newPublisher(rdb redis.UniversalClient, keys []string, rate int) *publisher {
	return &publisher{
		rdb: rdb, keys: keys, rate: rate,
		rng:    rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(len(keys)))),
		counts: make([]uint32, len(keys)),
	}
}

// loadResult is what a publishing window achieved.
type loadResult struct {
	Sent, Failed int64 // XADDs in the window
	Elapsed      time.Duration
	// HalfSent and HalfElapsed are the part of the window before midway.
	HalfSent    int64
	HalfElapsed time.Duration
}

// seed sends one XADD to every channel, so that the window measures appends
// to existing streams, not the creation of up to one stream per XADD.
func (p *publisher) seed(ctx context.Context) {
	chans := make([]int, 0, seedBatch)
	for i := range p.keys {
		if chans = append(chans, i); len(chans) == seedBatch || i == len(p.keys)-1 {
			p.send(ctx, chans)
			chans = chans[:0]
		}
	}
}

// run publishes for d, calling midway once when half of d has passed. Slices
// that fall behind are caught up in later ones, at most a tenth of a second's
// worth per pipeline, so the achieved rate is what Redis took.
func (p *publisher) run(ctx context.Context, d time.Duration, midway func(context.Context)) loadResult {
	tick := time.NewTicker(publishSlice)
	defer tick.Stop()
	sent0, failed0, issued := p.sent, p.failed, int64(0)
	var res loadResult
	start := time.Now()
	for elapsed := time.Duration(0); elapsed < d && ctx.Err() == nil; {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		elapsed = min(time.Since(start), d)
		n := min(int64(float64(p.rate)*elapsed.Seconds())-issued, int64(p.rate/10))
		issued += max(n, 0)
		p.send(ctx, p.randomChannels(int(n)))
		if res.HalfElapsed == 0 && elapsed >= d/2 {
			res.HalfSent, res.HalfElapsed = p.sent-sent0, time.Since(start)
			midway(ctx)
		}
	}
	res.Sent, res.Failed, res.Elapsed = p.sent-sent0, p.failed-failed0, time.Since(start)
	return res
}

func (p *publisher) randomChannels(n int) []int {
	chans := make([]int, max(n, 0))
	for i := range chans {
		chans[i] = p.rng.IntN(len(p.keys))
	}
	return chans
}

// send sends one XADD per channel index in one pipeline: XADD <key> * data <seq>.
func (p *publisher) send(ctx context.Context, chans []int) {
	if len(chans) == 0 {
		return
	}
	pipe := p.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(chans))
	for i, c := range chans {
		p.seq++
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: p.keys[c],
			Values: []any{"data", strconv.FormatInt(p.seq, 10)},
		})
	}
	pipe.Exec(ctx) // errors are counted per command below
	for i, cmd := range cmds {
		if cmd.Err() != nil {
			p.failed++
			continue
		}
		p.counts[chans[i]]++
		p.sent++
	}
}
