package hub

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// Defaults for what channels keep of their latest reads.
const (
	DefaultRecentBytes = 64 << 20
	DefaultRecentFor   = 30 * time.Second
)

// A burst cuts slow subscribers off at whatever point of it they had
// reached, and they come back at once, each from its own position. Read
// from the store, each replay would be its own read and its own copy of
// the burst's frames, and memory would again grow with subscribers × burst
// size. So channels keep the runs they have just fanned out, each with the
// position it was read after, for a while (up to DefaultRecentBytes of
// data in all), and a replay from a position they cover is served from
// them: no read, and the frames the live subscribers were given. Writing
// a large burst to thousands of sockets takes minutes, and its replays
// with it, so a run is kept for DefaultRecentFor after it was last read or
// served, not after it was read. A replay's own read from the store is
// kept the same way (keepAfter): when a node dies its clients come back
// here from the same few positions over a second or two, too spread out
// for one read to serve them all at once.
type recentRun struct {
	after protocol.ID // the position the run was read after
	msgs  []*Message  // the gap's notice first, if any
	bytes int
	at    time.Time // read or last served
}

// keep records a run just read after the cursor and fanned out, if the
// budget of kept bytes shared by all channels (used) has room for it once
// this channel's runs unused for maxAge are dropped, and its oldest if
// need be. ch.mu must be held, and the cursor not yet moved past msgs.
// It reports whether the channel now keeps runs it kept none of before.
func (ch *channel) keep(msgs []*Message, now time.Time, used *atomic.Int64, budget int64, maxAge time.Duration) bool {
	return ch.keepAfter(ch.cursor, msgs, now, used, budget, maxAge)
}

// keepAfter records a run read after the position after: one fanned out
// (keep), or one a replay read from the store, so that the replays from
// the same position that follow it (a dead node's clients, who all had
// the same last entry, reconnecting over a second or two) are served
// from it rather than each reading the store again. ch.mu must be held.
func (ch *channel) keepAfter(after protocol.ID, msgs []*Message, now time.Time, used *atomic.Int64, budget int64, maxAge time.Duration) bool {
	if budget <= 0 || len(msgs) == 0 {
		return false
	}
	was := len(ch.recent) > 0
	n := 0
	for _, m := range msgs {
		n += len(m.Entry.Data)
	}
	ch.expire(now, maxAge, used)
	for len(ch.recent) > 0 && used.Load()+int64(n) > budget {
		ch.dropOldest(used)
	}
	if used.Add(int64(n)) > budget {
		used.Add(-int64(n))
		return false
	}
	ch.recent = append(ch.recent, recentRun{after: after, msgs: msgs, bytes: n, at: now})
	return !was
}

// expire drops the runs unused for maxAge, oldest first: a run served
// since stays, and so do the runs after it; ch.mu must be held.
func (ch *channel) expire(now time.Time, maxAge time.Duration, used *atomic.Int64) {
	for len(ch.recent) > 0 && now.Sub(ch.recent[0].at) > maxAge {
		ch.dropOldest(used)
	}
}

func (ch *channel) dropOldest(used *atomic.Int64) {
	used.Add(-int64(ch.recent[0].bytes))
	ch.recent[0] = recentRun{}
	ch.recent = ch.recent[1:]
	if len(ch.recent) == 0 {
		ch.recent = nil
	}
}

// recentAfter returns what follows pos in the runs kept: a whole run when
// pos is where it was read after (its gap's notice first, if it has one),
// or the rest of a run when pos is one of its entries. The messages are
// those the live subscribers were given, so their frames are shared; what
// follows them is found by asking again from their end. Any other
// position is for the store: the end of the newest run, which may be
// before a gap or a reset no run shows yet, and the zero position, the
// start of whatever stream is there now, which after a reset is not the
// one the runs were read from. ch.mu must be held; the run served is
// marked used at now.
func (ch *channel) recentAfter(pos protocol.ID, now time.Time) ([]*Message, bool) {
	for i := len(ch.recent) - 1; i >= 0; i-- { // newest first: a run's end is the next one's start
		r := &ch.recent[i]
		if r.after == pos && !pos.IsZero() {
			r.at = now
			return r.msgs, true
		}
		entries := r.msgs
		if entries[0].Gap != nil {
			entries = entries[1:]
		}
		if len(entries) == 0 || pos.Less(entries[0].Entry.ID) || entries[len(entries)-1].Entry.ID.Less(pos) {
			continue
		}
		j, found := slices.BinarySearchFunc(entries, pos, func(m *Message, id protocol.ID) int {
			return m.Entry.ID.Compare(id)
		})
		if !found || j+1 == len(entries) {
			return nil, false
		}
		r.at = now
		return entries[j+1:], true
	}
	return nil, false
}

// keeper drops what channels keep once it is older than RecentFor, so a
// channel that goes quiet after a burst does not hold it.
type keeper struct {
	mu       sync.Mutex
	channels map[*channel]struct{}
}

func (k *keeper) add(ch *channel) {
	k.mu.Lock()
	if k.channels == nil {
		k.channels = make(map[*channel]struct{})
	}
	k.channels[ch] = struct{}{}
	k.mu.Unlock()
}

func (k *keeper) run(ctx context.Context, maxAge time.Duration, used *atomic.Int64) {
	t := time.NewTicker(maxAge / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			k.mu.Lock()
			chs := make([]*channel, 0, len(k.channels))
			for ch := range k.channels {
				chs = append(chs, ch)
			}
			k.mu.Unlock()
			for _, ch := range chs {
				ch.mu.Lock() // before k.mu, as in dispatch
				ch.expire(now, maxAge, used)
				if len(ch.recent) == 0 {
					k.mu.Lock()
					delete(k.channels, ch) // kept again, it is added again
					k.mu.Unlock()
				}
				ch.mu.Unlock()
			}
		}
	}
}

// replayReadBytes is about how much entry data one replay read from the
// store takes: a replay that finds nothing kept holds its read while it is
// written, so a read of large entries is shorter than ReplayBatch.
const replayReadBytes = 1 << 20

// noteSizes folds a run's entry sizes into the channel's mean.
func (ch *channel) noteSizes(msgs []*Message) {
	n, bytes := 0, 0
	for _, m := range msgs {
		if m.Gap == nil {
			n, bytes = n+1, bytes+len(m.Entry.Data)
		}
	}
	if n == 0 {
		return
	}
	mean := int64(bytes / n)
	if old := ch.entryBytes.Load(); old > 0 {
		mean = (3*old + mean) / 4
	}
	ch.entryBytes.Store(mean)
}

// replayLimit is how many entries a replay read of ch takes.
func (h *Hub) replayLimit(ch *channel) int {
	mean := ch.entryBytes.Load()
	if mean <= 0 {
		return h.cfg.ReplayBatch
	}
	return int(min(int64(h.cfg.ReplayBatch), max(16, replayReadBytes/mean)))
}
