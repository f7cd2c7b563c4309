package hub

import (
	"context"
	"errors"

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
	// Offer queues a live message and must not block; false means the
	// queue is full, and the hub then removes the subscription and kicks.
	Offer(s *Sub, m *Message) bool
	// Send queues a replayed message, waiting for room; it fails once the
	// connection is closed or ctx ends.
	Send(ctx context.Context, s *Sub, m *Message) error
	// Kick cuts the connection off for reason. It must not block and must
	// not call back into the hub synchronously.
	Kick(reason error)
}

// Message is one delivery on a channel: an entry, or a gap notice.
type Message struct {
	Channel string
	Entry   store.Entry
	// Gap, when set, says entries may be missing before the next one; Entry
	// is then empty.
	Gap *store.Gap
	// Frames is scratch space where transports cache their encoding of the
	// message, one slot each, so a fan-out encodes once. Only the goroutine
	// delivering the message touches it.
	Frames [4][]byte
}

// Frame slots in Message.Frames.
const (
	FrameSSE = iota
	FrameWS
)
