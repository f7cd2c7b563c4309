package hub

import (
	"context"
	"errors"
	"sync"

	"github.com/pushcluster/pushcluster/pkg/store"
)

// ErrSlowConsumer is the reason a connection is kicked when its queue is full.
var ErrSlowConsumer = errors.New("hub: slow consumer")

// Conn is a client connection as the hub sees it. Implementations must be
// safe for concurrent use: the hub calls them from its read loop and from
// the goroutines of joining subscribers.
type Conn interface {
	// Client is the client's ID, matched against an entry's To and Exclude.
	Client() string
	// Offer queues live messages of s's channel, in order, and must not
	// block; false means the queue is full, and the hub then removes the
	// subscription and kicks. Several messages come at once when entries
	// arrive in a burst, so a transport can write them together.
	Offer(s *Sub, msgs []*Message) bool
	// Send queues replayed messages, waiting for room; it fails once the
	// connection is closed or ctx ends.
	Send(ctx context.Context, s *Sub, msgs []*Message) error
	// Kick cuts the connection off for reason. It must not block and must
	// not call back into the hub synchronously.
	Kick(reason error)
}

// Message is one delivery on a channel: an entry, or a gap notice. One
// Message is shared by every subscriber of the channel.
type Message struct {
	Channel string
	Entry   store.Entry
	// Gap, when set, says entries may be missing before the next one; Entry
	// is then empty.
	Gap *store.Gap

	frames [frameSlots]frameCache
}

type frameCache struct {
	once sync.Once
	b    []byte
}

// Frame slots: one per encoding a transport caches in a Message.
const (
	FrameSSE = iota
	FrameSSERaw
	FrameWS
	frameSlots
)

// Frame returns the message's encoding in slot, building it on first use,
// so a fan-out encodes once however many connections (and fan-out workers)
// deliver it. build must depend on the message alone.
func (m *Message) Frame(slot int, build func(*Message) []byte) []byte {
	c := &m.frames[slot]
	c.once.Do(func() { c.b = build(m) })
	return c.b
}
