package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/pushcluster/pushcluster/internal/wire"
	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// wsConn is one WebSocket connection: an outbox written straight to the
// socket (wire.WS), and client frames read when the watcher finds some,
// on a goroutine that ends once they are handled. An idle WebSocket holds
// no goroutine and no read buffer.
type wsConn struct {
	conn
	wire    *wire.WS
	pinging atomic.Bool // a ping waits for its pong
	window  uint32      // the peer's receive window at the last heartbeat
	// pubLimit belongs to the frame handler (one frame at a time); it is
	// made on the first publish, so idle connections carry none.
	pubLimit *rate.Limiter

	// readMu is held by whoever reads and handles client frames: one at a
	// time, in order, and none once the connection is over.
	readMu sync.Mutex
	over   bool   // the connection is over: nothing more is read; guarded by readMu
	early  []byte // what the client sent with its handshake, read first; guarded by readMu
	// peerClosed: the client's close frame was read; guarded by readMu.
	peerClosed bool
}

var _ adapter = (*wsConn)(nil)

// wsHandler serves GET /ws: connections of kind k.
func (s *Server) wsHandler(k *kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.serveWS(w, r, k) }
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, k *kind) {
	h, ok := s.shake(w, r, k, false)
	if !ok {
		return
	}
	patterns, anyOrigin := originPatterns(s.cfg.AllowedOrigins)
	if s.reg.sendingOn() {
		// A draining or isolated node: the client reconnects at once, through
		// the load balancer, to another node, and resubscribes there.
		if ws, _, err := wire.AcceptWS(w, r, patterns, anyOrigin, s.cfg.WriteTimeout); err == nil {
			s.stats.sentOn.Add(1)
			ws.WriteClose(protocol.CloseServiceRestart, "node draining: reconnect to another node")
			ws.Close()
		}
		return
	}
	if !s.admit(w, h.addr) {
		return
	}
	ws, early, err := wire.AcceptWS(w, r, patterns, anyOrigin, s.cfg.WriteTimeout)
	if err != nil {
		s.release(h.addr)
		s.log.Debug("refused a WebSocket handshake", "err", err)
		return
	}
	c := &wsConn{wire: ws, early: early}
	s.initConn(&c.conn, h, k, c)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if !s.open(&c.conn, c.wire, c.wire.Raw(), h.who.Expires) {
		ws.WriteClose(protocol.CloseServiceRestart, "node shutting down: reconnect")
		ws.Close()
		c.cancel()
		return
	}
	s.reg.hold() // the connection, until its end: an idle one holds no goroutine
	c.wire.SetOutbox(c.box)
	c.readMu.Lock()
	c.box.Offer(wsEncode(&protocol.ServerFrame{Type: protocol.TypeWelcome, Client: c.client, Session: c.session, Node: s.reg.node}))
	since := h.q.Get("since")
	if len(h.channels) > 1 && since != "" {
		c.reject(nil, protocol.CodeInvalidID, errors.New("since needs exactly one channel; subscribe to each with its own since"))
		h.channels = nil
	}
	for _, ch := range h.channels {
		c.subscribe(protocol.ClientFrame{Type: protocol.TypeSubscribe, Channel: ch, Since: since})
	}
	c.readMu.Unlock()
	if !c.wire.Watch(s.watch.Load(), c.readable) {
		s.reg.spawn(c.readLoop)
	} else if len(early) > 0 {
		s.reg.spawn(c.readReady) // already read from the socket: no watch sees it
	}
}

// readable is the watcher's call: the client sent something.
func (c *wsConn) readable() { c.srv.reg.spawn(c.readReady) }

// readReady reads and handles the client's messages while it has sent
// more, then waits for the watcher again.
func (c *wsConn) readReady() {
	if c.read(false) {
		c.wire.Rearm() // fails only once closed, and its end reads no more
	}
}

// readLoop reads and handles the client's messages until the connection
// ends: the goroutine that waits for them where there is no watcher.
func (c *wsConn) readLoop() { c.read(true) }

// wsReaders are the buffers messages are read through, while they are
// read: client frames are small JSON, and a payload larger than the
// buffer is read straight into its own.
var wsReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1024) }}

// read reads and handles messages: all the client sends (wait), or
// while it has sent more. It reports whether the connection is still
// open.
func (c *wsConn) read(wait bool) bool {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.over {
		return false
	}
	if !wait && len(c.early) == 0 && !c.wire.Pending() {
		return true // another read took it
	}
	br := c.reader()
	defer doneReading(br)
	limit, hard := c.limits()
	for {
		m, err := c.wire.ReadMessage(br, limit, hard, c.ponged)
		if err != nil {
			var closed *wire.WSCloseError
			c.peerClosed = errors.As(err, &closed)
			c.box.Close(err)
			return false
		}
		switch {
		case m.Control:
		case m.TooLarge:
			c.reject(nil, protocol.CodeTooLarge, fmt.Errorf("frame larger than %d bytes", limit))
		case !m.Text:
			c.reject(nil, protocol.CodeBinary, errors.New("frames must be JSON text"))
		default:
			c.handle(m.Data)
		}
		if !wait && br.Buffered() == 0 {
			return true
		}
	}
}

func (c *wsConn) ponged() { c.pinging.Store(false) }

// reader returns a pooled reader of the client's bytes, beginning with
// what it sent with its handshake if that is not read yet; readMu is
// held. Give it back with doneReading.
func (c *wsConn) reader() *bufio.Reader {
	var src io.Reader = c.wire
	if len(c.early) > 0 {
		src, c.early = io.MultiReader(bytes.NewReader(c.early), c.wire), nil
	}
	br := wsReaders.Get().(*bufio.Reader)
	br.Reset(src)
	return br
}

func doneReading(br *bufio.Reader) {
	br.Reset(nil)
	wsReaders.Put(br)
}

// limits are the sizes a client's message is read under: past limit it
// is dropped with an error frame, past hard the connection is closed.
func (c *wsConn) limits() (limit, hard int64) {
	return int64(c.srv.cfg.MaxPayload + 4096), int64(16*c.srv.cfg.MaxPayload + 4096)
}

func (c *wsConn) handle(b []byte) {
	f, ferr := protocol.DecodeClientFrame(b)
	if ferr != nil {
		c.reject(f.Ref, ferr.Code, ferr.Err)
		return
	}
	switch f.Type {
	case protocol.TypeSubscribe:
		c.subscribe(f)
	case protocol.TypeUnsubscribe:
		c.unsubscribe(f)
	case protocol.TypePublish:
		c.publish(f)
	case protocol.TypePing:
		c.reply(&protocol.ServerFrame{Type: protocol.TypePong, Ref: f.Ref})
	case protocol.TypeAuth:
		c.reauth(f)
	}
}

func (c *wsConn) subscribe(f protocol.ClientFrame) {
	var since *protocol.ID
	if f.Since != "" {
		id, err := protocol.ParseID(f.Since)
		if err != nil {
			c.reject(f.Ref, protocol.CodeInvalidID, err)
			return
		}
		since = &id
	}
	switch {
	case !c.who.Load().CanRead(f.Channel):
		c.srv.auth.Forbidden()
		c.reject(f.Ref, protocol.CodeForbidden, auth.ErrCannotRead(f.Channel))
		return
	case c.subscribedTo(f.Channel):
		c.reject(f.Ref, protocol.CodeAlreadySub, fmt.Errorf("already subscribed to %q", f.Channel))
		return
	case c.subscriptions() >= c.srv.cfg.MaxChannels:
		c.reject(f.Ref, protocol.CodeTooMany, fmt.Errorf("more than %d channels", c.srv.cfg.MaxChannels))
		return
	}
	if err := c.srv.auth.AllowSubscribe(c.ctx, c.who.Load(), c.client, f.Channel, c.kind.name); err != nil {
		status, code := auth.Code(err)
		if status == http.StatusForbidden {
			c.srv.auth.Forbidden()
		}
		c.reject(f.Ref, code, err)
		return
	}
	sub, err := c.join(c.ctx, f.Channel, since)
	switch {
	case errors.Is(err, protocol.ErrInvalidChannel):
		c.reject(f.Ref, protocol.CodeInvalidChannel, err)
		return
	case errors.Is(err, store.ErrUnreadable):
		c.reject(f.Ref, protocol.CodeUnreadable, err)
		return
	case err != nil:
		c.reject(f.Ref, protocol.CodeUnavailable, errors.New("the store is unavailable; subscribe again"))
		return
	}
	c.reply(&protocol.ServerFrame{Type: protocol.TypeSubscribed, Ref: f.Ref, Channel: f.Channel, Position: sub.Start().String()})
	if err := c.attach(sub); err != nil {
		c.box.Close(err)
	}
}

func (c *wsConn) unsubscribe(f protocol.ClientFrame) {
	if !c.leave(f.Channel) {
		c.reject(f.Ref, protocol.CodeNotSub, fmt.Errorf("not subscribed to %q", f.Channel))
		return
	}
	c.reply(&protocol.ServerFrame{Type: protocol.TypeUnsubscribed, Ref: f.Ref, Channel: f.Channel})
}

func (c *wsConn) publish(f protocol.ClientFrame) {
	p := protocol.PublishRequest{Channel: f.Channel, Client: f.Client, Event: f.Event, Data: f.Data, To: f.To, IdempotencyKey: f.IdempotencyKey}
	if err := protocol.ValidateIdempotencyKey(p.IdempotencyKey); err != nil {
		c.reject(f.Ref, protocol.CodeInvalidKey, err)
		return
	}
	if f.ExceptSelf {
		p.Exclude = c.client
	}
	if !c.allowPublish(f, p) {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	if p.Client != "" {
		res, perr := c.srv.pub.Direct(ctx, p)
		if perr != nil {
			c.reject(f.Ref, perr.Code, perr.Err)
			return
		}
		c.srv.stats.pubWS.Add(1)
		c.reply(&protocol.ServerFrame{Type: protocol.TypeAck, Ref: f.Ref, Client: p.Client, ID: res.ID, Delivered: &res.Delivered})
		return
	}
	res, perr := c.srv.pub.Publish(ctx, p)
	if perr != nil {
		c.reject(f.Ref, perr.Code, perr.Err)
		return
	}
	c.srv.stats.pubWS.Add(1)
	c.reply(&protocol.ServerFrame{Type: protocol.TypeAck, Ref: f.Ref, Channel: f.Channel, ID: res.ID, Duplicate: res.Duplicate})
}

// reply queues a reply behind whatever is already queued, waiting for room.
func (c *wsConn) reply(f *protocol.ServerFrame) {
	c.box.Send(c.ctx, wsEncode(f))
}

func (c *wsConn) reject(ref []byte, code string, err error) {
	c.reply(&protocol.ServerFrame{Type: protocol.TypeError, Ref: ref, Code: code, Message: err.Error()})
}

// messages queues a run of messages as frames shared with every WebSocket
// subscriber given them.
func (c *wsConn) messages(_ *hub.Sub, msgs []*hub.Message) wire.Queued {
	if len(msgs) == 1 {
		return wire.One(wsFrame(msgs[0]))
	}
	return wire.Shared(hub.Frames(msgs, encWS, wsFrame))
}

// encWS is the encoding of a WebSocket's messages.
var encWS = hub.NewEncoding("ws")

// wsFrame encodes m once for every WebSocket subscriber of its channel.
func wsFrame(m *hub.Message) []byte {
	if m.Gap != nil {
		g := m.Gap
		return wsEncode(&protocol.ServerFrame{Type: protocol.TypeGap, Channel: m.Channel, Reason: g.Reason,
			From: g.From.String(), Resume: g.Resume.String()})
	}
	return m.Frame(encWS, wsMessageFrame)
}

func wsMessageFrame(m *hub.Message) []byte {
	e := &m.Entry
	return wsEncode(&protocol.ServerFrame{Type: protocol.TypeMessage, Channel: m.Channel,
		ID: e.ID.String(), Event: e.Event, Data: &e.Data})
}

// wsEncode is f as a WebSocket text frame, ready for the wire.
func wsEncode(f *protocol.ServerFrame) []byte { return wire.WSText(f.Encode()) }

// errNoPong closes a WebSocket whose peer left a ping unanswered for a
// whole heartbeat interval.
var errNoPong = errors.New("transport: no pong for a heartbeat interval")

// heartbeat pings the peer. The previous ping still waiting for its pong
// means the peer is gone, unless it shows it is reading: frames were
// written since the last heartbeat, or its receive window moved. A peer
// working through a burst answers the ping only once it reaches it, behind
// the frames sent first. The connection is then closed.
func (c *wsConn) heartbeat() {
	reading := c.wire.Wrote()
	reading = c.peerWindowMoved() || reading
	if !c.pinging.CompareAndSwap(false, true) {
		if !reading {
			c.box.Close(errNoPong)
		}
		return
	}
	if !c.box.Offer(wire.WSPing) { // the queue is full: no ping to wait for
		c.pinging.Store(false)
	}
}

// peerWindowMoved reports whether the receive window the peer advertises
// changed since the last heartbeat. Called from the heartbeat only.
func (c *wsConn) peerWindowMoved() bool {
	wnd, ok := wire.PeerWindow(c.wire.Raw())
	if !ok {
		return false
	}
	moved := wnd != c.window
	c.window = wnd
	return moved
}

// end closes the connection once what is queued is written; a client
// whose token expired is told so first.
func (c *wsConn) end(reason error) {
	if errors.Is(reason, errTokenExpired) {
		c.box.Offer(wsEncode(&protocol.ServerFrame{Type: protocol.TypeError, Code: protocol.CodeTokenExpired, Message: reason.Error()}))
	}
	c.box.CloseAfterFlush(reason)
}

func (c *wsConn) direct(m cluster.Direct) []byte {
	return wsEncode(&protocol.ServerFrame{Type: protocol.TypeDirect, ID: m.ID, Event: m.Event, Data: &m.Data})
}

// wsCloseWait is how long a connection the node closes waits for the
// client's close frame before it drops the connection.
const wsCloseWait = 5 * time.Second

// CloseWire closes with a status that tells the client why. The close
// handshake may wait on the peer, so it runs on its own goroutine, which
// then ends the connection.
func (c *wsConn) CloseWire(reason error) {
	c.srv.log.Debug("closing a WebSocket", "client", c.client, "reason", reason)
	var code uint16 = protocol.CloseServiceRestart
	text, wait := "closed", true
	var proto *wire.WSProtocolError
	switch {
	case errors.Is(reason, hub.ErrSlowConsumer), errors.Is(reason, wire.ErrPeerNotReading):
		code, text = protocol.CloseSlowConsumer, "slow consumer: resubscribe with since"
	case errors.Is(reason, errShutdown), errors.Is(reason, errDrain):
		code, text = protocol.CloseServiceRestart, "node restarting: reconnect and resubscribe with since"
	case errors.Is(reason, errShed):
		code, text = protocol.CloseServiceRestart, "moved to even out load: reconnect and resubscribe with since"
	case errors.Is(reason, errDisconnected):
		code, text = protocol.CloseDisconnected, "disconnected by the server"
	case errors.Is(reason, errTokenExpired):
		code, text = protocol.CloseTokenExpired, "token expired: reconnect with a fresh token"
	case errors.Is(reason, errNoPong): // the peer is gone: no handshake to wait for
		code, wait = 0, false
	case errors.As(reason, &proto):
		code, text, wait = proto.Code, proto.Msg, false
	case isWSClose(reason), reason == nil:
		code, text = wsNormalClosure, ""
	case errors.Is(reason, io.EOF), errors.Is(reason, io.ErrUnexpectedEOF), errors.Is(reason, net.ErrClosed):
		code, text, wait = wsNormalClosure, "", false
	default:
		code, text, wait = wsInternalError, "internal error", false
	}
	c.srv.reg.spawn(func() { c.finish(code, text, wait) })
}

// The close codes of RFC 6455 section 7.4.1 the node ends with.
const (
	wsNormalClosure = 1000
	wsInternalError = 1011
)

func isWSClose(err error) bool {
	var closed *wire.WSCloseError
	return errors.As(err, &closed)
}

// finish ends the connection: its close frame with code (none for 0),
// then, when wait is set and the client has not closed already, up to
// wsCloseWait for the client's, which any frames before it are read and
// dropped for; then the socket is closed, and the connection cleaned up.
func (c *wsConn) finish(code uint16, text string, wait bool) {
	defer c.srv.reg.release()
	if code != 0 {
		c.wire.WriteClose(code, text)
	}
	c.cancel() // a frame being handled gives up its Redis calls
	if wait {
		// Bounds a read in progress, or the client's half-sent frame.
		c.wire.SetReadDeadline(time.Now().Add(wsCloseWait))
	} else {
		c.wire.Close()
	}
	c.readMu.Lock()
	if wait && !c.peerClosed {
		c.awaitClose()
	}
	c.over = true
	c.readMu.Unlock()
	c.wire.Close()
	c.wire.StopWatching()
	c.cleanup()
}

// awaitClose reads until the client's close frame, an error or the read
// deadline; readMu is held.
func (c *wsConn) awaitClose() {
	br := c.reader()
	defer doneReading(br)
	limit, hard := c.limits()
	for {
		if _, err := c.wire.ReadMessage(br, limit, hard, func() {}); err != nil {
			return
		}
	}
}

// originPatterns are the WebSocket handshake's allowed origins, as
// wire.AcceptWS matches them ("host" or "scheme://host" patterns); nil
// with "*", which skips the check instead.
func originPatterns(origins []string) (patterns []string, anyOrigin bool) {
	if slices.Contains(origins, "*") {
		return nil, true
	}
	return origins, false
}
