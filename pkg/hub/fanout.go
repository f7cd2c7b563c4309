package hub

import (
	"runtime"
	"sync"
)

// shardMin is the fewest subscribers worth handing to another worker: below
// it, the handoff costs more than the writes it spreads.
const shardMin = 128

// fanout spreads the deliveries of a large channel over one worker per
// core, so a message reaches thousands of sockets in a fraction of the time
// one goroutine would take. Each subscriber is served by exactly one worker
// per batch, so its messages stay in order.
type fanout struct {
	workers int
	work    chan *shard
	wg      sync.WaitGroup
}

type shard struct {
	subs   []*Sub
	msgs   []*Message
	stats  *counters
	kicked []*Sub
	done   *sync.WaitGroup
}

func newFanout(workers int) *fanout {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &fanout{workers: workers, work: make(chan *shard)}
}

// run starts the workers; they exit when stop is called.
func (f *fanout) run() {
	for range f.workers - 1 {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for sh := range f.work {
				sh.deliver()
			}
		}()
	}
}

func (f *fanout) stop() {
	close(f.work)
	f.wg.Wait()
}

// deliver offers msgs to every subscriber and returns those whose queue was
// full. The caller holds the channel's lock, so subs does not change.
func (f *fanout) deliver(subs []*Sub, msgs []*Message) []*Sub {
	var stats *counters
	if len(subs) > 0 {
		stats = subs[0].ch.stats
	}
	n := min(f.workers, len(subs)/shardMin)
	if n <= 1 {
		sh := shard{subs: subs, msgs: msgs, stats: stats}
		sh.deliver()
		return sh.kicked
	}
	var done sync.WaitGroup
	shards := make([]shard, n)
	size := (len(subs) + n - 1) / n
	for i := range shards {
		lo, hi := i*size, min((i+1)*size, len(subs))
		shards[i] = shard{subs: subs[lo:hi], msgs: msgs, stats: stats, done: &done}
	}
	shards[0].done = nil // delivered here, not by a worker
	done.Add(n - 1)
	for i := 1; i < n; i++ {
		f.work <- &shards[i]
	}
	shards[0].deliver()
	done.Wait()
	kicked := shards[0].kicked
	for i := 1; i < n; i++ {
		kicked = append(kicked, shards[i].kicked...)
	}
	return kicked
}

func (sh *shard) deliver() {
	for _, s := range sh.subs {
		if !deliverTo(s, sh.msgs, sh.stats) {
			sh.kicked = append(sh.kicked, s)
		}
	}
	if sh.done != nil {
		sh.done.Done()
	}
}
