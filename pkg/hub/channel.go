package hub

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// channel is one channel of interest: the cursor up to which live delivery
// has fanned out, and the subscribers it fans out to.
type channel struct {
	stats *counters
	name  string
	ready chan struct{} // closed once cursor is set or err is
	err   error
	live  atomic.Bool // set with cursor; read by the read loop
	refs  int         // guarded by Hub.mu: joined subscribers

	dirty bool // guarded by Hub.dirtyMu: to be read
	// sure, with dirty, says the channel is known to have moved (a
	// notification, a read that stopped at its limit), so the read loop
	// reads it without checking first. Guarded by Hub.dirtyMu.
	sure bool

	mu     sync.Mutex
	cursor protocol.ID // the last entry fanned out; written only by the read loop
	subs   []*Sub
	// recent are the runs just fanned out, for replays (see recentRun).
	recent []recentRun
	// caughtUp is a position a replay just found nothing after, until
	// caughtUpUntil (see caughtUpFor).
	caughtUp      protocol.ID
	caughtUpUntil time.Time
	// entryBytes is the mean data size of recent entries, to size replay
	// reads by bytes; written by the read loop.
	entryBytes atomic.Int64
}

func (ch *channel) add(s *Sub) {
	s.idx = len(ch.subs)
	ch.subs = append(ch.subs, s)
	ch.stats.subscriptions.Add(1)
}

// remove deletes s from the subscribers; ch.mu must be held.
func (ch *channel) remove(s *Sub) bool {
	i := s.idx
	if i < 0 || i >= len(ch.subs) || ch.subs[i] != s {
		return false
	}
	last := len(ch.subs) - 1
	ch.subs[i] = ch.subs[last]
	ch.subs[i].idx = i
	ch.subs[last] = nil
	ch.subs = ch.subs[:last]
	s.idx = -1
	ch.stats.subscriptions.Add(-1)
	return true
}

// dispatch fans a batch read after the cursor out to live subscribers,
// spreading large channels over the fan-out workers. keep, if set, is
// given the run, under ch.mu.
func (ch *channel) dispatch(b *store.Batch, f *fanout, keep func(msgs []*Message)) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	msgs := messagesOf(ch.name, b)
	if keep != nil {
		keep(msgs)
	}
	if b.Gap != nil {
		ch.stats.gap(b.Gap, len(ch.subs))
	}
	for _, s := range f.deliver(ch.subs, msgs) {
		ch.remove(s)
		s.conn.Kick(ErrSlowConsumer)
		ch.stats.kicked.Add(1)
	}
	ch.cursor = b.Last(ch.cursor)
}

// Messages wraps a batch as the hub wraps each read it fans out: messages
// of one run, whose frames are shared (see Frames). Transports use it to
// test and measure their burst path.
func Messages(channel string, b *store.Batch) []*Message { return messagesOf(channel, b) }

// messagesOf wraps a batch's gap and entries as shared messages of one run.
// The messages are allocated together: a burst is one allocation, not one
// per entry.
func messagesOf(channel string, b *store.Batch) []*Message {
	n := len(b.Entries)
	if b.Gap != nil {
		n++
	}
	r := &run{msgs: make([]*Message, 0, n)}
	all := make([]Message, n)
	if b.Gap != nil {
		all[0] = Message{Channel: channel, Gap: b.Gap}
	}
	for i := range b.Entries {
		all[n-len(b.Entries)+i] = Message{Channel: channel, Entry: b.Entries[i]}
	}
	for i := range all {
		all[i].run, all[i].at = r, i
		r.msgs = append(r.msgs, &all[i])
	}
	return r.msgs
}

// deliverTo offers s the messages it has not had and that are for it, in
// runs, and advances its position. It reports false when s's queue is full.
func deliverTo(s *Sub, msgs []*Message, stats *counters) bool {
	client := s.conn.Client()
	start, n := -1, 0
	defer func() { stats.delivered.Add(uint64(n)) }()
	for i, m := range msgs {
		ok := m.Gap != nil
		if !ok && s.pos.Less(m.Entry.ID) {
			s.pos = m.Entry.ID
			ok = m.Entry.For(client)
		}
		switch {
		case ok && start < 0:
			start = i
		case !ok && start >= 0:
			if !s.conn.Offer(s, msgs[start:i]) {
				return false
			}
			n += i - start
			start = -1
		}
	}
	if start >= 0 {
		if !s.conn.Offer(s, msgs[start:]) {
			return false
		}
		n += len(msgs) - start
	}
	return true
}
