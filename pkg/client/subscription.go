package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/pushcluster/pushcluster/internal/backoff"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// Event is what a Subscription delivers: a *Message, a *Gap or a *Direct.
type Event interface{ position() string }

// Message is an entry of a channel.
type Message struct {
	Channel string
	ID      string // the entry ID
	Event   string // the event name, "" for none
	Data    string
	pos     string
}

// Gap says messages of Channel may be missing before the ones that
// follow: Reason is why (docs/PROTOCOL.md, Gaps), From the position that
// could not be served, Resume where delivery goes on.
type Gap struct {
	Channel, Reason, From, Resume string
	pos                           string
}

// Direct is a message to this client alone, outside any channel: live
// only, never replayed.
type Direct struct {
	ID, Event, Data string
	pos             string
}

func (m *Message) position() string { return m.pos }
func (g *Gap) position() string     { return g.pos }
func (d *Direct) position() string  { return d.pos }

// ErrClosed is what Next returns once the Subscription is closed.
var ErrClosed = errors.New("client: subscription closed")

// Subscription delivers the messages of its channels, in order and
// exactly once, across reconnections to any node.
type Subscription struct {
	c        *Client
	channels []string // sorted
	hash     string
	events   chan Event
	cancel   context.CancelFunc
	done     chan struct{}

	// pos is the position of the last event handed to events; only the
	// run goroutine touches it.
	pos []protocol.ID

	mu   sync.Mutex
	at   string // the position after the last event Next returned
	err  error  // why the subscription ended
	node string
}

// Subscribe subscribes to channels after since (a position a
// Subscription, an event stream's Last-Event-ID or a long poll gave for
// the same channels; "" means from now) and keeps the subscription until
// ctx ends or Close. It connects in the background: an error that no
// reconnection can mend (a channel the credential may not read, a
// disconnect by the server) ends it, and Next returns that error.
func (c *Client) Subscribe(ctx context.Context, channels []string, since string) (*Subscription, error) {
	chs := slices.Clone(channels)
	slices.Sort(chs)
	chs = slices.Compact(chs)
	if len(chs) == 0 {
		return nil, errors.New("client: no channel")
	}
	for _, ch := range chs {
		if err := protocol.ValidateChannel(ch); err != nil {
			return nil, err
		}
	}
	s := &Subscription{c: c, channels: chs, hash: protocol.ChannelSetHash(chs), events: make(chan Event, 64), done: make(chan struct{})}
	if since != "" {
		pos, err := protocol.DecodeCursor(since, chs)
		if err != nil {
			return nil, fmt.Errorf("client: since %q: %w", since, err)
		}
		s.pos = pos
		s.at = since
	}
	ctx, s.cancel = context.WithCancel(ctx)
	go s.run(ctx)
	return s, nil
}

// Next returns the next event, waiting for it until ctx ends. Once the
// subscription has ended it returns why: ErrClosed, the context's error,
// or an *Error no reconnection could mend.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.mu.Lock()
			defer s.mu.Unlock()
			return nil, s.err
		}
		if p := ev.position(); p != "" {
			s.mu.Lock()
			s.at = p
			s.mu.Unlock()
		}
		return ev, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Position is the position after the last event Next returned: give it to
// a later Subscribe for the same channels, over any transport, on any
// node, to go on from there. "" until a position is known.
func (s *Subscription) Position() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at
}

// Node is the node that serves the subscription now, or served it last.
func (s *Subscription) Node() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.node
}

// Close ends the subscription and waits for its goroutines.
func (s *Subscription) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// conn is one connection of a subscription, whatever its transport: it
// delivers frames to emit until it fails or ctx ends.
type conn interface {
	run(ctx context.Context, s *Subscription, emit func(context.Context, *protocol.ServerFrame) error) error
}

// permanent marks an error no reconnection mends.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// run connects, delivers and reconnects until ctx ends or an error no
// reconnection can mend.
func (s *Subscription) run(ctx context.Context) {
	defer close(s.done)
	defer close(s.events)
	b := backoff.New(s.c.cfg.MinBackoff, s.c.cfg.MaxBackoff)
	unauthorized := 0
	for {
		s.state(State{State: StateConnecting})
		var cn conn
		switch s.c.cfg.Transport {
		case TransportSSE:
			cn = &sseConn{}
		case TransportPoll:
			cn = &pollConn{}
		default:
			cn = &wsConn{}
		}
		delivered := false
		err := cn.run(ctx, s, func(ctx context.Context, f *protocol.ServerFrame) error {
			ok, err := s.deliver(ctx, f)
			if ok {
				delivered = true
				b.Reset()
			}
			return err
		})
		if ctx.Err() != nil {
			s.end(ErrClosed)
			return
		}
		s.state(State{State: StateDisconnected, Err: err})
		var p permanent
		if errors.As(err, &p) {
			s.end(p.error)
			return
		}
		// A credential refused three times running is not going to change.
		var e *Error
		switch {
		case errors.As(err, &e) && e.Status == http.StatusUnauthorized:
			if unauthorized++; unauthorized == 3 {
				s.end(err)
				return
			}
		case delivered:
			unauthorized = 0
		}
		if !b.Sleep(ctx) {
			s.end(ErrClosed)
			return
		}
	}
}

func (s *Subscription) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func (s *Subscription) state(st State) {
	st.Transport = s.c.cfg.Transport
	if st.State == StateConnected {
		s.mu.Lock()
		s.node = st.Node
		s.mu.Unlock()
	}
	if s.c.cfg.OnState != nil {
		s.c.cfg.OnState(st)
	}
}

// index is channel's place in s.channels, or -1.
func (s *Subscription) index(channel string) int {
	i, ok := slices.BinarySearch(s.channels, channel)
	if !ok {
		return -1
	}
	return i
}

// since is the position to resume from: "" when none is known yet.
func (s *Subscription) since() string {
	if s.pos == nil {
		return ""
	}
	return protocol.EncodeCursor(s.hash, s.pos)
}

// started records where a connection starts: the position the node
// resolved, for a subscription that had none.
func (s *Subscription) started(channel string, at string) {
	if s.pos == nil {
		s.pos = make([]protocol.ID, len(s.channels))
	}
	i := s.index(channel)
	if i < 0 || !s.pos[i].IsZero() {
		return
	}
	if id, err := protocol.ParseID(at); err == nil {
		s.pos[i] = id
	}
}

// deliver hands f on as an event; ok reports that it was one. A message
// at or before the position already delivered is dropped: the node never
// sends one, and a client must never deliver one twice.
func (s *Subscription) deliver(ctx context.Context, f *protocol.ServerFrame) (ok bool, err error) {
	var ev Event
	switch f.Type {
	case protocol.TypeWelcome:
		s.c.welcomed(f.Session, f.Client)
		s.state(State{State: StateConnected, Node: f.Node})
		return false, nil
	case protocol.TypeMessage:
		i := s.index(f.Channel)
		id, err := protocol.ParseID(f.ID)
		if i < 0 || err != nil {
			return false, fmt.Errorf("client: a message on %q with id %q", f.Channel, f.ID)
		}
		if s.pos == nil {
			s.pos = make([]protocol.ID, len(s.channels))
		}
		if !s.pos[i].Less(id) {
			return false, nil
		}
		s.pos[i] = id
		m := &Message{Channel: f.Channel, ID: f.ID, Event: f.Event, pos: s.since()}
		if f.Data != nil {
			m.Data = *f.Data
		}
		ev = m
	case protocol.TypeGap:
		i := s.index(f.Channel)
		if i < 0 {
			return false, fmt.Errorf("client: a gap on %q", f.Channel)
		}
		if s.pos == nil {
			s.pos = make([]protocol.ID, len(s.channels))
		}
		if id, err := protocol.ParseID(f.Resume); err == nil {
			s.pos[i] = id
		}
		ev = &Gap{Channel: f.Channel, Reason: f.Reason, From: f.From, Resume: f.Resume, pos: s.since()}
	case protocol.TypeDirect:
		d := &Direct{ID: f.ID, Event: f.Event}
		if f.Data != nil {
			d.Data = *f.Data
		}
		ev = d
	case protocol.TypeError:
		e := &Error{Code: f.Code, Message: f.Message}
		if f.Code == protocol.CodeDisconnected || f.Code == protocol.CodeForbidden || f.Code == protocol.CodeUnreadable {
			return false, permanent{e}
		}
		return false, e
	default:
		return false, nil
	}
	select {
	case s.events <- ev:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// refused turns a refused connection's answer into an error, permanent
// when no reconnection can mend it.
func refused(resp *http.Response) error {
	e := readError(resp)
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound:
		return permanent{e}
	}
	return e
}

// stallTimer ends a connection's context when it delivers nothing for
// the stall timeout; alive restarts it.
type stallTimer struct {
	t *time.Timer
	d time.Duration
}

func newStallTimer(d time.Duration, cancel func()) *stallTimer {
	return &stallTimer{t: time.AfterFunc(d, cancel), d: d}
}

func (st *stallTimer) alive() { st.t.Reset(st.d) }
func (st *stallTimer) stop()  { st.t.Stop() }
