package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/limit"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// sseConn is one EventSource connection. Its positions (one per channel)
// make up the event ID; they change only inside outbox builders, under the
// outbox's lock, so every ID written matches what was queued before it.
type sseConn struct {
	srv      *Server
	client   string
	session  string
	since    time.Time
	channels []string // sorted
	hash     string
	chunked  bool // frames carry HTTP/1.1 chunk framing: the wire is hijacked
	box      *outbox
	pos      []protocol.ID
	ctx      context.Context
	cancel   context.CancelFunc
	subs     []*hub.Sub // guarded by the handler until the watcher owns cleanup
	addr     netip.Addr
	exp      expiryEntry // ends the stream when the token expires
}

var _ hub.Conn = (*sseConn)(nil)

func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request) {
	q, err := query(r)
	if err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidQuery, err)
		return
	}
	who, channels, ok := s.readableChannels(w, r, q)
	if !ok {
		return
	}
	session, id, err := requestSession(q, who.Subject)
	if err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidSession, err)
		return
	}
	addr := limit.ClientAddr(r, s.cfg.TrustedProxies)
	c := &sseConn{srv: s, client: id, session: session, since: time.Now().UTC(),
		channels: channels, hash: protocol.ChannelSetHash(channels), addr: addr}
	c.pos = make([]protocol.ID, len(channels))
	if s.sendingOn() {
		c.sendOn(w, r, q)
		return
	}
	if !s.admit(w, addr) {
		return
	}
	since, gapReason := c.requestedPositions(r, q)

	wire, err := openSSE(w, r, s.cfg.WriteTimeout)
	if err != nil {
		s.release(addr)
		s.cfg.Logger.Debug("failed to open SSE stream", "err", err)
		return
	}
	parent := r.Context()
	if wire.conn != nil {
		parent = context.Background() // the request's context ends with this handler
	}
	c.ctx, c.cancel = context.WithCancel(parent)
	c.chunked = wire.chunked
	wire.onClose = c.cancel
	c.box = newOutbox(wire, s.cfg.QueueBytes)
	if !s.track(c) {
		s.release(addr)
		c.box.close(errShutdown)
		return
	}
	c.box.spawn = s.spawn
	s.writeBackedUp(c.box, wire.raw)
	s.expiries.add(c, who.Expires)
	started := make(chan struct{})
	wire.watch(s.spawn, func() {
		<-started
		c.cleanup()
	})
	if err := c.start(since, gapReason); err != nil {
		c.fail(err)
	}
	close(started)
	if wire.conn == nil {
		<-c.ctx.Done()
		c.box.close(nil)
		c.cleanup()
	}
}

// sendOn answers a stream that a draining or isolated node will not serve
// with its welcome and a short retry, then ends it, so that the browser
// reconnects at once, through the load balancer, to another node: never a
// non-200, which would close an EventSource for good. The welcome's id is
// the position the client brought, unchanged, so the next node resumes it
// (and reports any gap); a client that brought none gets no id, and starts
// where the next node starts it.
func (c *sseConn) sendOn(w http.ResponseWriter, r *http.Request, q url.Values) {
	wire, err := openSSE(w, r, c.srv.cfg.WriteTimeout)
	if err != nil {
		return
	}
	wire.onClose = func() {}
	c.chunked = wire.chunked
	data, _ := json.Marshal(protocol.Welcome{Client: c.client, Session: c.session, Node: c.srv.cfg.Node, Channels: c.channels})
	id := ""
	if since, reason := c.requestedPositions(r, q); since != nil && reason == "" {
		id = protocol.EncodeCursor(c.hash, since)
	}
	frame := append(protocol.SSERetry(sendOnRetry()), protocol.SSEControl(protocol.EventWelcome, id, data)...)
	wire.writeFrames([]queued{one(c.wrap(frame))})
	wire.closeWire(errDrain)
	c.srv.stats.sentOn.Add(1)
}

// sendOnRetry is the reconnection time of a stream a node sends on: short,
// and spread, so that its clients do not all come back in one instant.
func sendOnRetry() time.Duration {
	return 250*time.Millisecond + rand.N(750*time.Millisecond)
}

// readableChannels authenticates r and returns the channels it asks for,
// or answers 401, 400 or 403 and reports false.
func (s *Server) readableChannels(w http.ResponseWriter, r *http.Request, q url.Values) (*auth.Principal, []string, bool) {
	who, ok := s.authenticate(w, r)
	if !ok {
		return nil, nil, false
	}
	channels, err := s.parseChannels(q["channel"])
	if err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidChannel, err)
		return nil, nil, false
	}
	for _, ch := range channels {
		if !who.CanRead(ch) {
			s.forbid(w, errCannotRead(ch))
			return nil, nil, false
		}
	}
	return who, channels, true
}

// requestedPositions reads Last-Event-ID (or the lastEventId query
// parameter). A bad one is not an error: browsers give up for good on a
// non-200 answer, so the client is told with push.gap instead.
func (c *sseConn) requestedPositions(r *http.Request, q url.Values) (since []protocol.ID, gapReason string) {
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("lastEventId")
	}
	if last == "" {
		return nil, ""
	}
	since, err := protocol.DecodeCursor(last, c.channels)
	switch {
	case errors.Is(err, protocol.ErrCursorMismatch):
		c.srv.stats.gapsMismatch.Add(1)
		return nil, "mismatch"
	case err != nil:
		c.srv.stats.gapsMalformed.Add(1)
		return nil, store.GapMalformed
	}
	return since, ""
}

// start joins every channel, sends the welcome and any gap, then replays
// and hands each subscription over to live delivery.
func (c *sseConn) start(since []protocol.ID, gapReason string) error {
	hb := c.srv.cfg.Hub
	for i, ch := range c.channels {
		var from *protocol.ID
		if since != nil {
			from = &since[i]
		}
		sub, err := joinRetrying(c.ctx, hb, c, ch, from)
		if err != nil {
			return err
		}
		c.subs = append(c.subs, sub)
		c.pos[i] = sub.Start()
		c.srv.joined(c, ch)
	}
	if err := c.box.send(c.ctx, c.wrap(c.welcome())); err != nil {
		return err
	}
	if gapReason != "" {
		data, _ := json.Marshal(protocol.Gap{Channels: c.channels, Reason: gapReason})
		if err := c.box.send(c.ctx, c.wrap(protocol.SSEControl(protocol.EventGap, "", data))); err != nil {
			return err
		}
	}
	for _, sub := range c.subs {
		if err := hb.Attach(c.ctx, sub); err != nil {
			return err
		}
	}
	return nil
}

// joinRetrying joins channel, retrying while Redis is away: the connection
// stays open and the subscription starts once it is back.
func joinRetrying(ctx context.Context, hb *hub.Hub, c hub.Conn, channel string, since *protocol.ID) (*hub.Sub, error) {
	backoff := 50 * time.Millisecond
	for {
		sub, err := hb.Join(ctx, c, channel, since)
		if err == nil || ctx.Err() != nil || errors.Is(err, protocol.ErrInvalidChannel) || errors.Is(err, store.ErrUnreadable) {
			return sub, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// fail ends the stream, first telling the client why when it is something
// other than the connection closing.
func (c *sseConn) fail(err error) {
	if errors.Is(err, store.ErrUnreadable) {
		data, _ := json.Marshal(protocol.ErrorDetail{Code: protocol.CodeUnreadable, Message: err.Error()})
		c.box.send(c.ctx, c.wrap(protocol.SSEControl(protocol.EventError, "", data)))
	}
	c.box.closeAfterFlush(err)
}

// welcome is the first event: the reconnection time, the starting cursor as
// its ID (so even a client that saw nothing resumes without loss), and who
// served it.
func (c *sseConn) welcome() []byte {
	data, _ := json.Marshal(protocol.Welcome{Client: c.client, Session: c.session, Node: c.srv.cfg.Node, Channels: c.channels})
	b := protocol.SSERetry(c.srv.cfg.Retry)
	return append(b, protocol.SSEControl(protocol.EventWelcome, protocol.EncodeCursor(c.hash, c.pos), data)...)
}

func (c *sseConn) Client() string { return c.client }

func (c *sseConn) Offer(s *hub.Sub, msgs []*hub.Message) bool {
	return c.box.offerWith(func() queued { return c.frames(s, msgs) })
}

func (c *sseConn) Send(ctx context.Context, s *hub.Sub, msgs []*hub.Message) error {
	return c.box.sendWith(ctx, func() queued { return c.frames(s, msgs) })
}

// frames encodes a run of messages of s's channel and advances its
// position; it runs under the outbox lock. On a one-channel stream every
// subscriber gets the same bytes, so the run's frames are shared with them
// (a leading gap notice, which carries this stream's cursor, excepted);
// with several channels each id line is this connection's cursor, and only
// the bodies are shared.
func (c *sseConn) frames(s *hub.Sub, msgs []*hub.Message) queued {
	i := c.index(s.Channel())
	if len(c.channels) > 1 || gapAfterFirst(msgs) {
		return c.owned(i, msgs)
	}
	var gap []byte
	if msgs[0].Gap != nil {
		gap, msgs = c.gapFrame(i, msgs[0]), msgs[1:]
	}
	if len(msgs) == 0 {
		return one(gap)
	}
	c.pos[i] = msgs[len(msgs)-1].Entry.ID
	slot, build := hub.FrameSSERaw, sseShared
	if c.chunked {
		slot, build = hub.FrameSSE, sseChunkedShared
	}
	if len(msgs) == 1 && gap == nil {
		return one(build(msgs[0]))
	}
	frames := hub.Frames(msgs, slot, build)
	if gap != nil {
		frames = append([][]byte{gap}, frames...)
	}
	return run(frames)
}

// sseShared and sseChunkedShared are the frames every one-channel
// subscriber of a message gets, built once per message.
func sseShared(m *hub.Message) []byte {
	if m.Gap != nil {
		return nil // per connection
	}
	return m.Frame(hub.FrameSSERaw, sseFrame)
}

func sseChunkedShared(m *hub.Message) []byte {
	if m.Gap != nil {
		return nil
	}
	return m.Frame(hub.FrameSSE, sseChunkedFrame)
}

func gapAfterFirst(msgs []*hub.Message) bool {
	for _, m := range msgs[min(1, len(msgs)):] {
		if m.Gap != nil {
			return true
		}
	}
	return false
}

var crlf = []byte("\r\n")

// owned encodes a run for a stream of several channels: this connection's
// id lines (and chunk heads) in one buffer of its own, each followed by the
// message's shared body. A chunk's closing CRLF goes in front of the next
// head, so a message costs two parts.
func (c *sseConn) owned(i int, msgs []*hub.Message) queued {
	parts := make([][]byte, 0, 2*len(msgs)+1)
	// Appending may move own; the parts already taken keep the old array,
	// which nothing writes to again.
	own := make([]byte, 0, 96*len(msgs))
	open := false // the last part ends a chunk's data
	for _, m := range msgs {
		start := len(own)
		if open {
			own, open = append(own, crlf...), false
		}
		if m.Gap != nil {
			own = append(own, c.gapFrame(i, m)...)
			parts = append(parts, own[start:len(own):len(own)])
			continue
		}
		c.pos[i] = m.Entry.ID
		raw := m.Frame(hub.FrameSSERaw, sseFrame)
		body := raw[bytes.IndexByte(raw, '\n')+1:]
		var line [256]byte
		id := append(protocol.AppendCursor(append(line[:0], "id: "...), c.hash, c.pos), '\n')
		if c.chunked {
			own = strconv.AppendUint(own, uint64(len(id)+len(body)), 16)
			own, open = append(own, crlf...), true
		}
		own = append(own, id...)
		parts = append(parts, own[start:len(own):len(own)], body)
	}
	if open {
		parts = append(parts, crlf)
	}
	return run(parts)
}

// gapFrame is a gap notice carrying this stream's cursor after it.
func (c *sseConn) gapFrame(i int, m *hub.Message) []byte {
	c.pos[i] = m.Gap.Resume
	data, _ := json.Marshal(protocol.Gap{
		Channels: []string{m.Channel}, Reason: m.Gap.Reason,
		From: m.Gap.From.String(), Resume: m.Gap.Resume.String(),
	})
	return c.wrap(protocol.SSEControl(protocol.EventGap, protocol.EncodeCursor(c.hash, c.pos), data))
}

func (c *sseConn) Kick(reason error) { c.box.close(reason) }

func (c *sseConn) heartbeat() {
	if c.chunked {
		c.box.offer(sseHeartbeatChunk)
	} else {
		c.box.offer(protocol.SSEHeartbeat)
	}
}

// end finishes the stream once what is queued is written; a client that
// is disconnected is told so first, since a browser reconnects to any
// stream that simply ends.
func (c *sseConn) end(reason error) {
	if errors.Is(reason, errDisconnected) {
		data, _ := json.Marshal(protocol.ErrorDetail{Code: protocol.CodeDisconnected, Message: reason.Error()})
		c.box.offer(c.wrap(protocol.SSEControl(protocol.EventError, "", data)))
	}
	c.box.closeAfterFlush(reason)
}

func (c *sseConn) info() cluster.Client {
	return cluster.Client{ID: c.client, Node: c.srv.cfg.Node, Transport: "sse", Since: c.since}
}

func (c *sseConn) subscribedTo(channel string) bool {
	i := c.index(channel)
	return i < len(c.channels) && c.channels[i] == channel
}

// direct sends a message to this client alone, as a push.direct event
// whose data is the WebSocket direct frame's fields: a page tells it from
// channel messages by its name, and gets its own event name and ID. It
// carries no id line, so the browser's Last-Event-ID stays a position in
// the channels.
func (c *sseConn) direct(m cluster.Direct) bool {
	data, _ := json.Marshal(m)
	return c.box.offer(c.wrap(protocol.SSEControl(protocol.EventDirect, "", data))) && !c.box.isClosed()
}

// wrap adds the chunk framing of a hijacked HTTP/1.1 response.
func (c *sseConn) wrap(frame []byte) []byte {
	if !c.chunked {
		return frame
	}
	return chunk(frame)
}

func (c *sseConn) index(channel string) int {
	return sort.SearchStrings(c.channels, channel)
}

// expire tells the client its token expired, so that it fetches a new one
// rather than reconnect with the old, and ends the stream.
func (c *sseConn) expire() {
	c.srv.stats.expired.Add(1)
	data, _ := json.Marshal(protocol.ErrorDetail{Code: protocol.CodeTokenExpired, Message: errTokenExpired.Error()})
	c.box.offer(c.wrap(protocol.SSEControl(protocol.EventError, "", data)))
	c.box.closeAfterFlush(errTokenExpired)
}

func (c *sseConn) address() netip.Addr { return c.addr }

func (c *sseConn) expiryEntry() *expiryEntry { return &c.exp }

func (c *sseConn) cleanup() {
	c.srv.expiries.remove(c)
	for _, sub := range c.subs {
		c.srv.cfg.Hub.Leave(sub)
		c.srv.left(c, sub.Channel())
	}
	c.srv.untrack(c)
	c.cancel()
}
