package main

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// clientID is the client every counting connection claims to be.
const clientID = "sweep"

// tally adds up what every counting connection of one run received.
type tally struct {
	live      atomic.Int64 // entries offered by live delivery, in order
	replayed  atomic.Int64 // entries sent by replay, in order
	dups      atomic.Int64 // entries at or before the last one received
	misrouted atomic.Int64 // messages for another channel
	gaps      atomic.Int64 // gap notices: loss reported by the hub
	kicks     atomic.Int64
}

// delivered returns how many entries arrived in order, each once.
func (t *tally) delivered() int64 { return t.live.Load() + t.replayed.Load() }

// countingConn is a subscriber that keeps no messages: it checks that entry
// IDs strictly increase on its channel and counts them.
type countingConn struct {
	tally   *tally
	channel string

	mu   sync.Mutex
	last protocol.ID
	got  uint32 // entries received in order
}

var _ hub.Conn = (*countingConn)(nil)

func newCountingConn(t *tally, channel string) *countingConn {
	return &countingConn{tally: t, channel: channel}
}

// Client returns the one client ID all counting connections share.
func (c *countingConn) Client() string { return clientID }

// Offer counts live messages; it never refuses them.
func (c *countingConn) Offer(_ *hub.Sub, msgs []*hub.Message) bool {
	c.record(msgs, &c.tally.live)
	return true
}

// Send counts replayed messages.
func (c *countingConn) Send(_ context.Context, _ *hub.Sub, msgs []*hub.Message) error {
	c.record(msgs, &c.tally.replayed)
	return nil
}

// Kick counts a kick, which a connection that never refuses should not get.
func (c *countingConn) Kick(error) { c.tally.kicks.Add(1) }

func (c *countingConn) record(msgs []*hub.Message, in *atomic.Int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		switch {
		case m.Channel != c.channel:
			c.tally.misrouted.Add(1)
		case m.Gap != nil:
			c.tally.gaps.Add(1)
		case !c.last.Less(m.Entry.ID):
			c.tally.dups.Add(1)
		default:
			c.last = m.Entry.ID
			c.got++
			in.Add(1)
		}
	}
}

// received returns how many entries arrived in order.
func (c *countingConn) received() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got
}
