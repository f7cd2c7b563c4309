package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/pushcluster/pushcluster/internal/wire"
	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// sseConn is one EventSource connection: GET /sse?channel=…, its channels
// fixed for its life. Its positions (one per channel) make up the event ID;
// they change only inside the encoders, under the outbox's lock, so every
// ID written matches what was queued before it.
type sseConn struct {
	conn
	wire     *wire.SSE
	channels []string // sorted
	hash     string
	chunked  bool // frames carry HTTP/1.1 chunk framing: the wire is hijacked
	pos      []protocol.ID
	// starting is held while the stream starts: its cleanup waits for it.
	starting sync.Mutex
}

var _ adapter = (*sseConn)(nil)

// sseHandler serves GET /sse: connections of kind k.
func (s *Server) sseHandler(k *kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.serveSSE(w, r, k) }
}

func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, k *kind) {
	h, ok := s.shake(w, r, k, true)
	if !ok {
		return
	}
	c := &sseConn{channels: h.channels, hash: protocol.ChannelSetHash(h.channels), pos: make([]protocol.ID, len(h.channels))}
	s.initConn(&c.conn, h, k, c)
	since, gapReason := c.requestedPositions(r, h)
	if s.reg.sendingOn() {
		c.sendOn(w, r, since)
		return
	}
	if !s.admit(w, h.addr) {
		return
	}
	sw, err := wire.OpenSSE(w, r, s.cfg.WriteTimeout)
	if err != nil {
		s.release(h.addr)
		s.log.Debug("failed to open SSE stream", "err", err)
		return
	}
	parent := r.Context()
	if sw.Hijacked() {
		parent = context.Background() // the request's context ends with this handler
	}
	c.ctx, c.cancel = context.WithCancel(parent)
	c.wire, c.chunked = sw, sw.Chunked()
	sw.OnClose = c.cancel
	if !s.open(&c.conn, sw, sw.Raw(), h.who.Expires) {
		c.box.Close(errShutdown)
		return
	}
	c.starting.Lock()
	if sw.Hijacked() {
		// The stream, until its cleanup: with a watcher, no goroutine of
		// its own keeps the registry waiting for it.
		s.reg.hold()
		sw.Watch(s.watch.Load(), s.reg.spawn, c.ended)
	}
	if err := c.start(since, gapReason); err != nil {
		c.fail(err)
	}
	c.starting.Unlock()
	if !sw.Hijacked() {
		<-c.ctx.Done()
		c.box.Close(nil)
		c.cleanup()
	}
}

// ended cleans up a hijacked stream once it is closed, after its start.
func (c *sseConn) ended() {
	defer c.srv.reg.release()
	c.starting.Lock()
	c.starting.Unlock()
	c.cleanup()
}

// requestedPositions reads Last-Event-ID (or the lastEventId query
// parameter), as Server.positions says.
func (c *sseConn) requestedPositions(r *http.Request, h *handshake) (since []protocol.ID, gapReason string) {
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = h.q.Get("lastEventId")
	}
	return c.srv.positions(last, c.channels)
}

// sendOn answers a stream that a draining or isolated node will not serve
// with its welcome and a short retry, then ends it, so that the browser
// reconnects at once, through the load balancer, to another node: never a
// non-200, which would close an EventSource for good. The welcome's id is
// the position the client brought, unchanged, so the next node resumes it
// (and reports any gap); a client that brought none gets no id, and starts
// where the next node starts it.
func (c *sseConn) sendOn(w http.ResponseWriter, r *http.Request, since []protocol.ID) {
	sw, err := wire.OpenSSE(w, r, c.srv.cfg.WriteTimeout)
	if err != nil {
		return
	}
	c.chunked = sw.Chunked()
	data, _ := json.Marshal(protocol.Welcome{Client: c.client, Session: c.session, Node: c.srv.reg.node, Channels: c.channels})
	id := ""
	if since != nil {
		id = protocol.EncodeCursor(c.hash, since)
	}
	frame := append(protocol.SSERetry(sendOnRetry()), protocol.SSEControl(protocol.EventWelcome, id, data)...)
	sw.WriteFrames([]wire.Queued{wire.One(c.wrap(frame))})
	sw.Close(true)
	c.srv.stats.sentOn.Add(1)
}

// sendOnRetry is the reconnection time of a stream a node sends on: short,
// and spread, so that its clients do not all come back in one instant.
func sendOnRetry() time.Duration {
	return 250*time.Millisecond + rand.N(750*time.Millisecond)
}

// start joins every channel, sends the welcome and any gap, then replays
// and hands each subscription over to live delivery.
func (c *sseConn) start(since []protocol.ID, gapReason string) error {
	subs := make([]*hub.Sub, len(c.channels))
	for i, ch := range c.channels {
		var from *protocol.ID
		if since != nil {
			from = &since[i]
		}
		sub, err := c.joinRetrying(ch, from)
		if err != nil {
			return err
		}
		subs[i] = sub
		c.pos[i] = sub.Start()
	}
	if err := c.box.Send(c.ctx, c.wrap(c.welcome())); err != nil {
		return err
	}
	if gapReason != "" {
		data, _ := json.Marshal(protocol.Gap{Channels: c.channels, Reason: gapReason})
		if err := c.box.Send(c.ctx, c.wrap(protocol.SSEControl(protocol.EventGap, "", data))); err != nil {
			return err
		}
	}
	for _, sub := range subs {
		if err := c.attach(sub); err != nil {
			return err
		}
	}
	return nil
}

// fail ends the stream, first telling the client why when it is something
// other than the connection closing.
func (c *sseConn) fail(err error) {
	if errors.Is(err, store.ErrUnreadable) {
		c.box.Send(c.ctx, c.errorEvent(protocol.CodeUnreadable, err))
	}
	c.box.CloseAfterFlush(err)
}

// welcome is the first event: the reconnection time, the starting cursor as
// its ID (so even a client that saw nothing resumes without loss), and who
// served it.
func (c *sseConn) welcome() []byte {
	data, _ := json.Marshal(protocol.Welcome{Client: c.client, Session: c.session, Node: c.srv.reg.node, Channels: c.channels})
	b := protocol.SSERetry(c.srv.cfg.Retry)
	return append(b, protocol.SSEControl(protocol.EventWelcome, protocol.EncodeCursor(c.hash, c.pos), data)...)
}

// messages encodes a run of messages of s's channel and advances its
// position; it runs under the outbox lock. On a one-channel stream every
// subscriber gets the same bytes, so the run's frames are shared with them
// (a leading gap notice, which carries this stream's cursor, excepted);
// with several channels each id line is this connection's cursor, and only
// the bodies are shared.
func (c *sseConn) messages(s *hub.Sub, msgs []*hub.Message) wire.Queued {
	i := c.index(s.Channel())
	if len(c.channels) > 1 || gapAfterFirst(msgs) {
		return c.owned(i, msgs)
	}
	var gap []byte
	if msgs[0].Gap != nil {
		gap, msgs = c.gapFrame(i, msgs[0]), msgs[1:]
	}
	if len(msgs) == 0 {
		return wire.One(gap)
	}
	c.pos[i] = msgs[len(msgs)-1].Entry.ID
	enc, build := encSSE, sseShared
	if c.chunked {
		enc, build = encSSEChunked, sseChunkedShared
	}
	if len(msgs) == 1 && gap == nil {
		return wire.One(build(msgs[0]))
	}
	frames := hub.Frames(msgs, enc, build)
	if gap != nil {
		frames = append([][]byte{gap}, frames...)
	}
	return wire.Shared(frames)
}

// The encodings of an event stream's messages: whole, and for a stream
// that is chunked.
var (
	encSSE        = hub.NewEncoding("sse")
	encSSEChunked = hub.NewEncoding("sse-chunked")
)

// sseShared and sseChunkedShared are the frames every one-channel
// subscriber of a message gets, built once per message.
func sseShared(m *hub.Message) []byte {
	if m.Gap != nil {
		return nil // per connection
	}
	return m.Frame(encSSE, sseFrame)
}

func sseChunkedShared(m *hub.Message) []byte {
	if m.Gap != nil {
		return nil
	}
	return m.Frame(encSSEChunked, sseChunkedFrame)
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
func (c *sseConn) owned(i int, msgs []*hub.Message) wire.Queued {
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
		raw := m.Frame(encSSE, sseFrame)
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
	return wire.Shared(parts)
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

func (c *sseConn) heartbeat() {
	if c.chunked {
		c.box.Offer(sseHeartbeatChunk)
	} else {
		c.box.Offer(protocol.SSEHeartbeat)
	}
}

// end finishes the stream once what is queued is written; a client that
// is disconnected, or whose token expired, is told so first, since a
// browser reconnects to any stream that simply ends.
func (c *sseConn) end(reason error) {
	switch {
	case errors.Is(reason, errDisconnected):
		c.box.Offer(c.errorEvent(protocol.CodeDisconnected, reason))
	case errors.Is(reason, errTokenExpired):
		c.box.Offer(c.errorEvent(protocol.CodeTokenExpired, reason))
	}
	c.box.CloseAfterFlush(reason)
}

func (c *sseConn) errorEvent(code string, err error) []byte {
	data, _ := json.Marshal(protocol.ErrorDetail{Code: code, Message: err.Error()})
	return c.wrap(protocol.SSEControl(protocol.EventError, "", data))
}

// CloseWire ends the stream: with its last chunk when it ends on purpose.
func (c *sseConn) CloseWire(reason error) { c.wire.Close(endsCleanly(reason)) }

// direct sends a message to this client alone, as a push.direct event
// whose data is the WebSocket direct frame's fields: a page tells it from
// channel messages by its name, and gets its own event name and ID. It
// carries no id line, so the browser's Last-Event-ID stays a position in
// the channels.
func (c *sseConn) direct(m cluster.Direct) []byte {
	data, _ := json.Marshal(m)
	return c.wrap(protocol.SSEControl(protocol.EventDirect, "", data))
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
