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

	frames [MaxEncodings]frameCache
	run    *run // the read it came from, if any
	at     int  // its index in run.msgs
}

type frameCache struct {
	once sync.Once
	b    []byte
}

// Encoding names one way transports encode a message, shared by every
// connection that writes it that way (an event stream's frame, a
// WebSocket's): each message is encoded once per encoding, however many
// connections and fan-out workers deliver it. The hub knows encodings by
// number only; transports register theirs, by name, with NewEncoding.
type Encoding uint8

// MaxEncodings is how many encodings may be registered: each costs every
// message a slot.
const MaxEncodings = 4

var encodings struct {
	mu    sync.Mutex
	names []string
}

// NewEncoding registers an encoding under name, or returns the one already
// registered under it. It panics past MaxEncodings: a program registers a
// fixed few, at start.
func NewEncoding(name string) Encoding {
	encodings.mu.Lock()
	defer encodings.mu.Unlock()
	for i, n := range encodings.names {
		if n == name {
			return Encoding(i)
		}
	}
	if len(encodings.names) == MaxEncodings {
		panic("hub: more than MaxEncodings encodings registered: " + name)
	}
	encodings.names = append(encodings.names, name)
	return Encoding(len(encodings.names) - 1)
}

// Frame returns the message's encoding enc, building it on first use,
// so a fan-out encodes once however many connections (and fan-out workers)
// deliver it. build must depend on the message alone.
func (m *Message) Frame(enc Encoding, build func(*Message) []byte) []byte {
	c := &m.frames[enc]
	c.once.Do(func() { c.b = build(m) })
	return c.b
}

// run is the messages of one read. Every subscriber given them gets a
// contiguous part of run.msgs, so their frames are listed once per
// encoding and each connection's queue holds a slice of that list instead
// of a copy.
type run struct {
	msgs   []*Message
	frames [MaxEncodings]struct {
		once sync.Once
		b    [][]byte
	}
}

// Frames returns the encodings of msgs in enc (see Frame), in order. When
// msgs is a contiguous part of one read, as live deliveries and shared
// replays are, the slice is shared with every connection given the same
// messages: callers must not modify it or the frames in it. build may be
// called for every message of the read, gaps included.
func Frames(msgs []*Message, enc Encoding, build func(*Message) []byte) [][]byte {
	if len(msgs) == 0 {
		return nil
	}
	first := msgs[0]
	if r := first.run; r != nil && first.at+len(msgs) <= len(r.msgs) && &r.msgs[first.at] == &msgs[0] {
		c := &r.frames[enc]
		c.once.Do(func() {
			c.b = make([][]byte, len(r.msgs))
			for i, m := range r.msgs {
				c.b[i] = build(m)
			}
		})
		end := first.at + len(msgs)
		return c.b[first.at:end:end] // full: an append copies
	}
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = build(m)
	}
	return out
}
