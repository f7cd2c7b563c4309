package hub

import (
	"sync/atomic"
	"time"

	"github.com/pushcluster/pushcluster/pkg/store"
)

// Stats are the hub's counters since start, and its gauges now.
type Stats struct {
	Channels      int    // channels of interest: with at least one local subscriber
	Subscriptions int64  // live subscriptions
	Delivered     uint64 // messages queued to connections
	Kicked        uint64 // connections cut off as slow consumers
	Wakeups       uint64 // doorbell rings for one channel
	Sweeps        uint64 // rings for every channel: reconnects, failed probes, polls
	Reads         uint64 // pipelined reads of dirty channels
	Checks        uint64 // checks of channels suspected of moving (store.Moved)
	Checked       uint64 // channels those checks covered
	ReadErrors    uint64
	Replays       uint64 // subscriptions that replayed from a position
	Replayed      uint64 // entries replayed
	RecentReplays uint64 // replays served without reading the store: from runs just read, or with nothing missed
	GapsTrimmed   uint64 // gaps signalled per subscriber, by reason
	GapsReset     uint64
	Notified      bool // keyspace notifications proven; false means polling
}

// counters are updated on hot paths with single atomic adds.
type counters struct {
	subscriptions                        atomic.Int64
	delivered, kicked, wakeups, sweeps   atomic.Uint64
	reads, readErrors, replays, replayed atomic.Uint64
	checks, checked                      atomic.Uint64
	gapsTrimmed, gapsReset               atomic.Uint64
	recentReplays                        atomic.Uint64
}

func (c *counters) gap(g *store.Gap, n int) {
	switch g.Reason {
	case store.GapTrimmed:
		c.gapsTrimmed.Add(uint64(n))
	case store.GapReset:
		c.gapsReset.Add(uint64(n))
	}
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	n := len(h.channels)
	h.mu.Unlock()
	c := &h.stats
	return Stats{
		Channels: n, Subscriptions: c.subscriptions.Load(),
		Delivered: c.delivered.Load(), Kicked: c.kicked.Load(),
		Wakeups: c.wakeups.Load(), Sweeps: c.sweeps.Load(),
		Reads: c.reads.Load(), ReadErrors: c.readErrors.Load(),
		Checks: c.checks.Load(), Checked: c.checked.Load(),
		Replays: c.replays.Load(), Replayed: c.replayed.Load(),
		GapsTrimmed: c.gapsTrimmed.Load(), GapsReset: c.gapsReset.Load(),
		RecentReplays: c.recentReplays.Load(),
		Notified:      h.bell.Proven(),
	}
}

// observeRead reports one pipelined read's round trip, if asked to.
func (h *Hub) observeRead(start time.Time) {
	if h.cfg.ReadLatency != nil {
		h.cfg.ReadLatency(time.Since(start))
	}
}

// Subscriptions returns how many subscriptions are live, without taking a lock.
func (h *Hub) Subscriptions() int64 { return h.stats.subscriptions.Load() }
