package hub

import (
	"sync"
	"sync/atomic"

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

	dirty bool // guarded by Hub.dirtyMu

	mu     sync.Mutex
	cursor store.ID // the last entry fanned out; written only by the read loop
	subs   []*Sub
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

// dispatch fans a batch read after the cursor out to live subscribers.
func (ch *channel) dispatch(b *store.Batch) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	delivered := 0
	if b.Gap != nil {
		ch.stats.gap(b.Gap, len(ch.subs))
		m := &Message{Channel: ch.name, Gap: b.Gap}
		for i := 0; i < len(ch.subs); i++ {
			if s := ch.subs[i]; !s.conn.Offer(s, m) {
				ch.kick(s, &i)
			}
		}
	}
	for k := range b.Entries {
		m := &Message{Channel: ch.name, Entry: b.Entries[k]}
		id := m.Entry.ID
		for i := 0; i < len(ch.subs); i++ {
			s := ch.subs[i]
			if !s.pos.Less(id) {
				continue
			}
			s.pos = id
			if !m.Entry.For(s.conn.Client()) {
				continue
			}
			if !s.conn.Offer(s, m) {
				ch.kick(s, &i)
				continue
			}
			delivered++
		}
	}
	ch.cursor = b.Last(ch.cursor)
	ch.stats.delivered.Add(uint64(delivered))
}

// kick removes s, which could not keep up, and steps the loop index back
// over the subscriber swapped into its place.
func (ch *channel) kick(s *Sub, i *int) {
	ch.remove(s)
	s.conn.Kick(ErrSlowConsumer)
	ch.stats.kicked.Add(1)
	*i--
}
