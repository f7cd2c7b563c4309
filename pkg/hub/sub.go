package hub

import (
	"context"
	"time"

	"github.com/pushcluster/pushcluster/internal/backoff"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// Sub is one connection's subscription to one channel.
type Sub struct {
	hub  *Hub
	ch   *channel
	conn Conn
	idx  int // position in ch.subs; -1 when not live

	// pos is the last entry the subscriber has been given (or skipped);
	// guarded by ch.mu once live.
	pos     protocol.ID
	start   protocol.ID
	pending *replayed
	left    bool
}

// Channel returns the channel subscribed to.
func (s *Sub) Channel() string { return s.ch.name }

// Start returns the position the subscription starts after: the requested
// position, or after a reset the stream's newest entry, or for a fresh
// subscription the channel's current end.
func (s *Sub) Start() protocol.ID { return s.start }

// Gap returns the gap found at the requested position, if any.
func (s *Sub) Gap() *store.Gap {
	if s.pending == nil {
		return nil
	}
	return s.pending.gap
}

// Join subscribes conn to channel after since, or from now when since is
// nil. It resolves the start position (finding any gap) but delivers
// nothing until Attach.
func (h *Hub) Join(ctx context.Context, conn Conn, channel string, since *protocol.ID) (*Sub, error) {
	ch, err := h.acquire(ctx, channel)
	if err != nil {
		return nil, err
	}
	s := &Sub{hub: h, ch: ch, conn: conn, idx: -1}
	if since == nil {
		ch.mu.Lock()
		s.pos = ch.cursor
		ch.mu.Unlock()
		s.start = s.pos
		return s, nil
	}
	r, err := h.replayRead(ctx, ch, *since)
	if err != nil {
		h.release(ch)
		return nil, err
	}
	s.pos, s.start, s.pending = *since, *since, r
	h.stats.replays.Add(1)
	if g := r.gap; g != nil && g.Reason == store.GapReset {
		s.start = g.Resume
	}
	return s, nil
}

// Attach replays what the subscription is missing, then hands it over to
// live delivery. Replay waits on the connection (Conn.Send); it retries
// store errors until ctx ends.
func (h *Hub) Attach(ctx context.Context, s *Sub) error {
	b := backoff.New(10*time.Millisecond, time.Second)
	for {
		if s.pending != nil {
			if err := s.replay(ctx, s.pending); err != nil {
				return err
			}
			s.pending = nil
		}
		if h.handOver(s) {
			return nil
		}
		r, err := h.replayRead(ctx, s.ch, s.pos)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.Sleep(ctx)
			continue
		}
		s.pending = r
	}
}

// replayed is what follows a position, for a replay: messages of one run,
// shared with the other replays and deliveries given the same.
type replayed struct {
	gap     *store.Gap
	msgs    []*Message // the gap's notice first, if any
	entries int
}

// last returns the position after r, given the one it follows.
func (r *replayed) last(after protocol.ID) protocol.ID {
	if n := len(r.msgs); n > 0 {
		if m := r.msgs[n-1]; m.Gap != nil {
			return m.Gap.Resume
		}
		return r.msgs[n-1].Entry.ID
	}
	return after
}

// replayRead returns what follows pos on ch for a replay: from the runs the
// channel has just fanned out when pos is among them, else read from the
// store. Concurrent replays from the same position share one read, and its
// messages with their frames: when a node dies, or a burst cuts slow
// consumers off, its clients come back at once.
func (h *Hub) replayRead(ctx context.Context, ch *channel, pos protocol.ID) (*replayed, error) {
	now := time.Now()
	ch.mu.Lock()
	if pos == ch.caughtUp && pos == ch.cursor && now.Before(ch.caughtUpUntil) {
		// Nothing followed pos a moment ago, and live delivery has read
		// nothing since: what comes next is live delivery's.
		ch.mu.Unlock()
		h.stats.recentReplays.Add(1)
		return &replayed{}, nil
	}
	msgs, ok := ch.recentAfter(pos, now)
	ch.mu.Unlock()
	if ok {
		h.stats.recentReplays.Add(1)
		r := &replayed{msgs: msgs, entries: len(msgs)}
		if g := msgs[0].Gap; g != nil {
			r.gap, r.entries = g, len(msgs)-1
		}
		return r, nil
	}
	key := ch.name + "\x00" + pos.String()
	v, err, _ := h.replays.Do(key, func() (any, error) {
		// Shared: one caller going away must not fail the others.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replayReadTimeout)
		defer cancel()
		b, err := h.store.ReadAfter(rctx, ch.name, pos, h.replayLimit(ch))
		if err != nil {
			return nil, err
		}
		r := &replayed{gap: b.Gap, msgs: messagesOf(ch.name, &b), entries: len(b.Entries)}
		ch.mu.Lock()
		if len(r.msgs) == 0 {
			// Nothing follows pos: replays from it for a moment more are
			// told so without asking again (see caughtUpFor).
			ch.caughtUp, ch.caughtUpUntil = pos, time.Now().Add(caughtUpFor)
		} else if ch.keepAfter(pos, r.msgs, time.Now(), &h.kept, h.cfg.RecentBytes, h.cfg.RecentFor) {
			h.keeper.add(ch)
		}
		ch.mu.Unlock()
		return r, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*replayed), nil
}

// handOver makes s live if it has caught up with the channel's cursor.
// Entries the read loop fans out later and s already has are skipped by
// position, so it may be ahead.
func (h *Hub) handOver(s *Sub) bool {
	ch := s.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if s.pos.Less(ch.cursor) || s.left {
		return s.left
	}
	ch.add(s)
	return true
}

func (s *Sub) replay(ctx context.Context, b *replayed) error {
	stats := &s.hub.stats
	stats.replayed.Add(uint64(b.entries))
	if b.gap != nil {
		stats.gap(b.gap, 1)
	}
	kept := forClient(b.msgs, s.conn.Client())
	if len(kept) > 0 {
		if err := s.conn.Send(ctx, s, kept); err != nil {
			return err
		}
	}
	s.pos = b.last(s.pos)
	return nil
}

// forClient returns the messages of msgs for client: msgs itself when that
// is all of them, which keeps them shareable, else a copy (msgs is shared).
func forClient(msgs []*Message, client string) []*Message {
	for i, m := range msgs {
		if m.Gap != nil || m.Entry.For(client) {
			continue
		}
		kept := append(make([]*Message, 0, len(msgs)-1), msgs[:i]...)
		for _, m := range msgs[i+1:] {
			if m.Gap != nil || m.Entry.For(client) {
				kept = append(kept, m)
			}
		}
		return kept
	}
	return msgs
}

// Leave ends the subscription. It is safe to call more than once, and after
// the hub kicked the connection.
func (h *Hub) Leave(s *Sub) {
	ch := s.ch
	ch.mu.Lock()
	already := s.left
	s.left = true
	ch.remove(s)
	ch.mu.Unlock()
	if !already {
		h.release(ch)
	}
}

// acquire returns the channel, creating it (reading its current end and
// watching it) for the first subscriber.
func (h *Hub) acquire(ctx context.Context, name string) (*channel, error) {
	if err := protocol.ValidateChannel(name); err != nil {
		return nil, err
	}
	h.mu.Lock()
	ch := h.channels[name]
	if ch != nil {
		ch.refs++
		h.mu.Unlock()
		return h.await(ctx, ch)
	}
	ch = &channel{stats: &h.stats, name: name, ready: make(chan struct{}), refs: 1}
	h.channels[name] = ch
	h.mu.Unlock()

	latest, err := h.store.Latest(ctx, name)
	if err != nil {
		ch.err = err
		h.mu.Lock()
		if h.channels[name] == ch {
			delete(h.channels, name)
		}
		h.mu.Unlock()
		close(ch.ready)
		h.release(ch)
		return nil, err
	}
	ch.cursor = latest
	ch.live.Store(true)
	close(ch.ready)
	h.bell.Watch(name)
	return ch, nil
}

func (h *Hub) await(ctx context.Context, ch *channel) (*channel, error) {
	// A channel others already read is ready: asking ctx for its Done
	// channel would make one, which a connection's context keeps for the
	// connection's life.
	ready := ch.ready
	select {
	case <-ready:
	default:
		select {
		case <-ready:
		case <-ctx.Done():
			h.release(ch)
			return nil, ctx.Err()
		}
	}
	if ch.err == nil {
		return ch, nil
	}
	h.release(ch)
	return nil, ch.err
}

func (h *Hub) release(ch *channel) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch.refs--
	if ch.refs > 0 || h.channels[ch.name] != ch {
		return
	}
	delete(h.channels, ch.name)
	ch.live.Store(false)
	h.bell.Unwatch(ch.name)
}
