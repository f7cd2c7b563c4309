package transport

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/pushcluster/pushcluster/internal/wire"
	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// Long polling: GET /poll?channel=…[&since=…][&session=…][&wait=…][&poll=…]
// for networks where streams do not get through. A long-polling client is
// a connection like any other (a pollConn) that lives across its polls:
// subscribed, counted, in presence and reachable by messages to its
// client while a poll is held, and for Config.PollLinger after each answer, so
// that what arrives between two polls waits for the next. Each answer
// carries a single-use key (poll) that continues the session on this node
// without authenticating again; a poll that reaches another node, or comes
// after the linger, starts a new session from its since on that node, with
// nothing lost either way: since is a position in the streams.
//
// The connection's outbox writes to the pollConn itself (it is the wire):
// the frames, each a WebSocket server frame's JSON, collect until a poll
// takes them. A run of messages ends with a marker part, the position
// after it, so the since of an answer is exactly the position after the
// messages in it, however the outbox split the writes.

// pollAnswerBytes is roughly the most one answer carries; the rest waits
// in the outbox for the next poll.
const pollAnswerBytes = 256 << 10

// errLingeredOut ends a long-polling client that did not poll again.
var errLingeredOut = errors.New("transport: long-polling client did not poll again")

// errSuperseded ends a long-polling session that its client restarted
// from another position.
var errSuperseded = errors.New("transport: long-polling session restarted from another position")

// polls are the long-polling sessions of a node waiting for their next
// poll, by key.
type polls struct {
	srv   *Server
	kind  *kind
	mu    sync.Mutex
	byKey map[string]*pollConn
}

// pollConn is one long-polling client.
type pollConn struct {
	conn
	h        *handshake
	channels []string // sorted
	hash     string
	pos      []protocol.ID // the encoders' positions, under the outbox's lock

	mu       sync.Mutex
	room     sync.Cond     // signalled when an answer takes the frames, or the session ends
	frames   [][]byte      // what the next answer carries
	size     int           // bytes in frames
	urgent   bool          // frames hold something to answer at once
	since    string        // the position after frames
	answered string        // the since of the last answer
	key      string        // the key that continues the session; "" while a poll is held
	ready    chan struct{} // signalled when something urgent arrives or the session ends
	ended    error         // why the connection ended, once it has
	// ending: end was called; its last frames are answered without a key,
	// whether or not the close has followed them yet.
	ending bool
	linger *time.Timer
	opened bool // tracked by the registry
}

var (
	_ adapter           = (*pollConn)(nil)
	_ wire.DirectWriter = (*pollConn)(nil)
)

// pollHandler serves GET /poll: connections of kind k.
func (s *Server) pollHandler(k *kind) http.HandlerFunc {
	p := &polls{srv: s, kind: k, byKey: map[string]*pollConn{}}
	return p.serve
}

func (p *polls) serve(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidQuery, err)
		return
	}
	wait, err := protocol.ParsePollWait(q.Get("wait"))
	if err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidWait, err)
		return
	}
	since := q.Get("since")
	if c := p.take(q.Get("poll")); c != nil {
		if c.continues(q["channel"], since) {
			p.hold(w, r, c, wait)
			return
		}
		// Another position, or other channels: a new session from there,
		// under the same credential if the channels are the same.
		c.box.Close(errSuperseded)
		if slices.Equal(sortedUnique(q["channel"]), c.channels) {
			p.open(w, r, c.h, since, wait)
			return
		}
	}
	h, ok := p.srv.shake(w, r, p.kind, true)
	if !ok {
		return
	}
	p.open(w, r, h, since, wait)
}

// take removes the session waiting under key and returns it, or nil.
func (p *polls) take(key string) *pollConn {
	if key == "" {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.byKey[key]
	delete(p.byKey, key)
	return c
}

// put leaves c waiting under its key for the linger.
func (p *polls) put(c *pollConn, key string) {
	p.mu.Lock()
	p.byKey[key] = c
	p.mu.Unlock()
	c.mu.Lock()
	c.key = key
	if c.linger == nil {
		c.linger = time.AfterFunc(p.srv.cfg.PollLinger, func() { p.lingeredOut(c) })
	} else {
		c.linger.Reset(p.srv.cfg.PollLinger)
	}
	c.mu.Unlock()
}

// lingeredOut ends c, which did not poll again in time.
func (p *polls) lingeredOut(c *pollConn) {
	c.mu.Lock()
	key := c.key
	c.mu.Unlock()
	p.mu.Lock()
	mine := key != "" && p.byKey[key] == c
	if mine {
		delete(p.byKey, key)
	}
	p.mu.Unlock()
	if mine {
		c.box.Close(errLingeredOut)
	}
}

// continues reports whether a poll for channels from since continues c:
// the same channels, from the position c last answered.
func (c *pollConn) continues(channels []string, since string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended != nil || since == c.answered && slices.Equal(sortedUnique(channels), c.channels)
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// open starts a session for h from since and holds its first poll.
func (p *polls) open(w http.ResponseWriter, r *http.Request, h *handshake, since string, wait time.Duration) {
	s := p.srv
	if s.reg.sendingOn() {
		p.sendOn(w, since)
		return
	}
	if !s.admit(w, h.addr) {
		return
	}
	c := &pollConn{h: h, channels: h.channels, hash: protocol.ChannelSetHash(h.channels),
		pos: make([]protocol.ID, len(h.channels)), since: since, ready: make(chan struct{}, 1)}
	c.room.L = &c.mu
	s.initConn(&c.conn, h, p.kind, c)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	from, gapReason := s.positions(since, c.channels)
	// A new session answers at once with its welcome and its start, so the
	// client knows who serves it, as it would on a stream.
	c.frames = [][]byte{(&protocol.ServerFrame{Type: protocol.TypeWelcome, Client: c.client, Session: c.session, Node: s.reg.node}).Encode()}
	c.size, c.urgent = len(c.frames[0]), true
	c.opened = true // nothing else has c yet
	if !s.open(&c.conn, c, nil, h.who.Expires) {
		c.opened = false
		c.box.Close(errShutdown)
		protocol.WriteError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, errors.New("node shutting down: poll again"))
		return
	}
	// The subscriptions start now, so that the first answer's since is
	// where they start; the replay runs on, answered in parts.
	gone := context.AfterFunc(r.Context(), func() { c.box.Close(context.Canceled) })
	subs, err := c.start(from, gapReason)
	gone()
	if err != nil {
		c.fail(err)
	} else {
		s.reg.spawn(func() {
			for _, sub := range subs {
				if err := c.attach(sub); err != nil {
					c.fail(err)
					return
				}
			}
		})
	}
	if r.Context().Err() == nil {
		p.hold(w, r, c, wait)
	}
}

// start joins every channel and tells any gap in since; the
// subscriptions then replay what they are missing and go live on attach.
func (c *pollConn) start(since []protocol.ID, gapReason string) ([]*hub.Sub, error) {
	subs := make([]*hub.Sub, len(c.channels))
	for i, ch := range c.channels {
		var from *protocol.ID
		if since != nil {
			from = &since[i]
		}
		sub, err := c.joinRetrying(ch, from)
		if err != nil {
			return nil, err
		}
		subs[i] = sub
		c.pos[i] = sub.Start()
	}
	// The start, so that even a poll answered with nothing resumes from
	// here; a since that was no position is told, channel by channel.
	parts := make([][]byte, 0, len(c.channels)+1)
	if gapReason != "" {
		for i, ch := range c.channels {
			parts = append(parts, (&protocol.ServerFrame{Type: protocol.TypeGap, Channel: ch, Reason: gapReason, Resume: c.pos[i].String()}).Encode())
		}
	}
	parts = append(parts, marker(protocol.EncodeCursor(c.hash, c.pos)))
	if err := c.box.SendWith(c.ctx, func() wire.Queued { return wire.Shared(parts) }); err != nil {
		return nil, err
	}
	return subs, nil
}

// fail ends the session, telling the client why when it is something
// other than the connection closing.
func (c *pollConn) fail(err error) {
	if errors.Is(err, store.ErrUnreadable) {
		c.box.Offer(errorFrame(protocol.CodeUnreadable, err))
	}
	c.box.CloseAfterFlush(err)
}

// hold waits for something to answer, up to wait, then answers. A client
// that goes away leaves the session waiting under the key it came with.
func (p *polls) hold(w http.ResponseWriter, r *http.Request, c *pollConn, wait time.Duration) {
	// The server's read timeout would end the request mid-wait.
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(wait + 10*time.Second))
	c.mu.Lock()
	came := c.key
	c.key = ""
	if c.linger != nil {
		c.linger.Stop()
	}
	c.mu.Unlock()
	if came == "" {
		came = newPollKey() // a first poll: the client has no key, so the session lingers out
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for !c.answerable() {
		select {
		case <-c.ready:
			continue
		case <-timeout.C:
		case <-r.Context().Done():
			p.put(c, came)
			return
		}
		break
	}
	p.answer(w, c)
}

// answerable reports whether a held poll should be answered now.
func (c *pollConn) answerable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.urgent || c.ended != nil
}

// answer writes what c holds and leaves c waiting for its next poll under
// a new key, unless it has ended.
func (p *polls) answer(w http.ResponseWriter, c *pollConn) {
	c.mu.Lock()
	frames, since, over := c.frames, c.since, c.ended != nil || c.ending
	c.frames, c.size, c.urgent, c.answered = nil, 0, false, since
	c.room.Broadcast()
	c.mu.Unlock()
	key := ""
	if !over {
		key = newPollKey()
		p.put(c, key)
	}
	b := protocol.AppendPollAnswer(make([]byte, 0, 128+len(frames)*96), frames, since, p.srv.reg.node, key)
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	w.Write(b)
}

// sendOn answers the poll of a client that a draining or isolated node
// will not serve, after a short, spread pause, with nothing and its own
// since: it polls again, through the load balancer, elsewhere.
func (p *polls) sendOn(w http.ResponseWriter, since string) {
	time.Sleep(sendOnRetry())
	p.srv.stats.sentOn.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Write(protocol.AppendPollAnswer(nil, nil, since, p.srv.reg.node, ""))
}

func newPollKey() string {
	var b [18]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// marker is the part that ends a run of messages: the position after it.
// No frame begins with a zero byte.
func marker(since string) []byte { return append([]byte{0}, since...) }

// TryWrite takes q's frames for the next answer while it has room;
// otherwise the outbox keeps them for WriteFrames.
func (c *pollConn) TryWrite(q *wire.Queued) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended != nil {
		return c.ended
	}
	if c.size < pollAnswerBytes {
		c.takeLocked(q)
	}
	return nil
}

// WriteFrames takes qs for the answers to come, waiting while the next
// answer is full.
func (c *pollConn) WriteFrames(qs []wire.Queued) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range qs {
		for c.size >= pollAnswerBytes && c.ended == nil {
			c.room.Wait()
		}
		if c.ended != nil {
			return c.ended
		}
		c.takeLocked(&qs[i])
	}
	return nil
}

// takeLocked adds q's frames to the next answer, and its marker's
// position as the answer's since. c.mu must be held.
func (c *pollConn) takeLocked(q *wire.Queued) {
	q.Each(func(part []byte) bool {
		if len(part) > 0 && part[0] == 0 {
			c.since = string(part[1:])
			return true
		}
		c.frames = append(c.frames, part)
		c.size += len(part)
		c.urgent = true
		return true
	})
	q.Advance(q.Left())
	if c.urgent {
		c.signal()
	}
}

func (c *pollConn) signal() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// messages encodes a run of messages of s's channel: the WebSocket frames'
// JSON, shared with every WebSocket and long-polling subscriber, then the
// position after them.
func (c *pollConn) messages(s *hub.Sub, msgs []*hub.Message) wire.Queued {
	i := sort.SearchStrings(c.channels, s.Channel())
	parts := make([][]byte, 0, len(msgs)+1)
	for _, m := range msgs {
		if m.Gap != nil {
			c.pos[i] = m.Gap.Resume
		} else {
			c.pos[i] = m.Entry.ID
		}
		parts = append(parts, wire.WSPayload(wsFrame(m)))
	}
	return wire.Shared(append(parts, marker(protocol.EncodeCursor(c.hash, c.pos))))
}

// direct encodes a message to this client alone, for its next answer.
func (c *pollConn) direct(m cluster.Direct) []byte {
	return (&protocol.ServerFrame{Type: protocol.TypeDirect, ID: m.ID, Event: m.Event, Data: &m.Data}).Encode()
}

// heartbeat does nothing: a long-polling client shows it is there by
// polling, and the linger ends one that does not.
func (c *pollConn) heartbeat() {}

// end ends the session once what is queued is taken; a client that is
// disconnected, or whose token expired, is told so in its last answer.
func (c *pollConn) end(reason error) {
	c.mu.Lock()
	c.ending = true
	c.mu.Unlock()
	switch {
	case errors.Is(reason, errDisconnected):
		c.box.Offer(errorFrame(protocol.CodeDisconnected, reason))
	case errors.Is(reason, errTokenExpired):
		c.box.Offer(errorFrame(protocol.CodeTokenExpired, reason))
	}
	c.box.CloseAfterFlush(reason)
}

func errorFrame(code string, err error) []byte {
	return (&protocol.ServerFrame{Type: protocol.TypeError, Code: code, Message: err.Error()}).Encode()
}

// CloseWire ends the session: a held poll is answered with what is left
// (without a key), a waiting session keeps its last frames for its next
// poll until the linger ends, and the connection leaves its channels.
func (c *pollConn) CloseWire(reason error) {
	if reason == nil {
		reason = wire.ErrClosed
	}
	c.mu.Lock()
	c.ended = reason
	c.room.Broadcast()
	c.signal()
	opened := c.opened
	c.mu.Unlock()
	if opened {
		c.srv.reg.spawn(c.cleanup)
	}
}
