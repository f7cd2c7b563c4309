package hub

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/pushcluster/pushcluster/pkg/store"
)

// Defaults for what a channel keeps of its latest reads.
const (
	DefaultRecentBytes = 8 << 20
	DefaultRecentFor   = 2 * time.Second
)

// A burst cuts slow subscribers off at whatever point of it they had
// reached, and they come back at once, each from its own position. Read
// from the store, each replay would be its own read and its own copy of
// the burst's frames, and memory would again grow with subscribers × burst
// size. So a channel keeps the runs it has just fanned out for a moment
// (DefaultRecentFor, up to DefaultRecentBytes of data), and a replay from
// a position inside them is served from them: no read, and the frames the
// live subscribers were given.
type recentRun struct {
	msgs  []*Message
	bytes int
	at    time.Time
}

// keep records a run just fanned out; ch.mu must be held. It reports
// whether the channel now keeps runs it kept none of before.
func (ch *channel) keep(msgs []*Message, now time.Time, maxBytes int, maxAge time.Duration) bool {
	if maxBytes <= 0 || len(msgs) == 0 {
		return false
	}
	was := len(ch.recent) > 0
	n := 0
	for _, m := range msgs {
		n += len(m.Entry.Data)
	}
	ch.recent = append(ch.recent, recentRun{msgs: msgs, bytes: n, at: now})
	ch.recentBytes += n
	ch.expire(now, maxBytes, maxAge)
	return !was && len(ch.recent) > 0
}

// expire drops the oldest runs until what is kept is young and small
// enough; ch.mu must be held.
func (ch *channel) expire(now time.Time, maxBytes int, maxAge time.Duration) {
	drop := 0
	for drop < len(ch.recent) && (ch.recentBytes > maxBytes || now.Sub(ch.recent[drop].at) > maxAge) {
		ch.recentBytes -= ch.recent[drop].bytes
		drop++
	}
	if drop > 0 {
		clear(ch.recent[:drop])
		ch.recent = slices.Delete(ch.recent, 0, drop)
	}
}

// recentAfter returns what follows pos in the runs kept, when pos is an
// entry of one of them and something follows it there. The messages are a
// tail of one run, so their frames are shared; what follows that run is
// found by asking again from its end. Any other position, the position the
// oldest run was read after included, is for the store: it may be before a
// gap or a reset the runs do not show. ch.mu must be held.
func (ch *channel) recentAfter(pos store.ID) ([]*Message, bool) {
	for i := len(ch.recent) - 1; i >= 0; i-- {
		msgs := ch.recent[i].msgs
		if msgs[0].Gap != nil {
			msgs = msgs[1:]
		}
		if len(msgs) == 0 || pos.Less(msgs[0].Entry.ID) || msgs[len(msgs)-1].Entry.ID.Less(pos) {
			continue
		}
		j, found := slices.BinarySearchFunc(msgs, pos, func(m *Message, id store.ID) int {
			return m.Entry.ID.Compare(id)
		})
		switch {
		case !found:
			return nil, false
		case j+1 < len(msgs):
			return msgs[j+1:], true
		case i+1 < len(ch.recent) && ch.recent[i+1].msgs[0].Gap == nil:
			return ch.recent[i+1].msgs, true // read right after pos
		}
		return nil, false
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

func (k *keeper) run(ctx context.Context, maxBytes int, maxAge time.Duration) {
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
				ch.expire(now, maxBytes, maxAge)
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
