package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/pushcluster/pushcluster/internal/wire"
	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// wsConn is one WebSocket connection: a read goroutine that handles client
// frames, and an outbox written straight to the socket (wire.WS).
type wsConn struct {
	conn
	ws      *websocket.Conn
	wire    *wire.WS
	pinging atomic.Bool // a ping waits for its pong
	window  uint32      // the peer's receive window at the last heartbeat
	// pubLimit belongs to the frame handler (one frame at a time); it is
	// made on the first publish, so idle connections carry none.
	pubLimit *rate.Limiter
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
		if ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: patterns, InsecureSkipVerify: anyOrigin}); err == nil {
			s.stats.sentOn.Add(1)
			ws.Close(protocol.CloseServiceRestart, "node draining: reconnect to another node")
		}
		return
	}
	if !s.admit(w, h.addr) {
		return
	}
	rec := wire.NewWSRecorder(w, s.cfg.WriteTimeout)
	c := &wsConn{}
	ws, err := websocket.Accept(rec, r, &websocket.AcceptOptions{OriginPatterns: patterns, InsecureSkipVerify: anyOrigin,
		OnPongReceived: func(context.Context, []byte) { c.pinging.Store(false) }})
	if err != nil {
		s.release(h.addr)
		s.log.Debug("refused a WebSocket handshake", "err", err)
		return
	}
	// Frames over MaxPayload+4KiB get an error frame; only frames past this
	// hard limit close the connection.
	ws.SetReadLimit(int64(16*s.cfg.MaxPayload + 4096))
	s.initConn(&c.conn, h, k, c)
	c.ws, c.wire = ws, rec.Wire()
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if !s.open(&c.conn, c.wire, c.wire.Raw(), h.who.Expires) {
		ws.Close(protocol.CloseServiceRestart, "node shutting down: reconnect")
		return
	}
	c.wire.SetOutbox(c.box)
	c.box.Offer(wsEncode(&protocol.ServerFrame{Type: protocol.TypeWelcome, Client: c.client, Session: c.session, Node: s.reg.node}))
	since := h.q.Get("since")
	if len(h.channels) > 1 && since != "" {
		c.reject(nil, protocol.CodeInvalidID, errors.New("since needs exactly one channel; subscribe to each with its own since"))
		h.channels = nil
	}
	for _, ch := range h.channels {
		c.subscribe(protocol.ClientFrame{Type: protocol.TypeSubscribe, Channel: ch, Since: since})
	}
	s.reg.spawn(c.readLoop)
}

// readLoop reads client frames until the connection ends. It is the one
// goroutine an idle connection keeps, so frames are handled on a goroutine
// of their own: a subscribe runs deep Redis calls, and the stack they grow
// would otherwise stay with the idle reader until a GC shrinks it.
func (c *wsConn) readLoop() {
	defer c.cleanup()
	limit := int64(c.srv.cfg.MaxPayload + 4096)
	for {
		// Closing the connection ends the read; a cancellable context would
		// cost every idle connection a registered callback.
		typ, r, err := c.ws.Reader(context.Background())
		if err != nil {
			c.box.Close(err)
			return
		}
		b, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err != nil {
			c.box.Close(err)
			return
		}
		switch {
		case int64(len(b)) > limit:
			if _, err := io.Copy(io.Discard, r); err != nil {
				c.box.Close(err)
				return
			}
			c.reject(nil, protocol.CodeTooLarge, fmt.Errorf("frame larger than %d bytes", limit))
		case typ != websocket.MessageText:
			c.reject(nil, protocol.CodeBinary, errors.New("frames must be JSON text"))
		default:
			done := make(chan struct{})
			go func() {
				defer close(done)
				c.handle(b)
			}()
			<-done
		}
	}
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

// CloseWire closes with a status that tells the client why. The close
// handshake may wait on the peer, so it runs on its own goroutine.
func (c *wsConn) CloseWire(reason error) {
	c.srv.log.Debug("closing a WebSocket", "client", c.client, "reason", reason)
	code, text := websocket.StatusCode(protocol.CloseServiceRestart), "closed"
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
		c.srv.reg.spawn(func() {
			c.ws.CloseNow()
			c.cancel()
		})
		return
	case websocket.CloseStatus(reason) != -1, errors.Is(reason, io.EOF), reason == nil:
		code = websocket.StatusNormalClosure
	default:
		code = websocket.StatusInternalError
	}
	c.srv.reg.spawn(func() {
		c.ws.Close(code, text)
		c.cancel()
	})
}

// originPatterns are the WebSocket handshake's allowed origins, as
// coder/websocket matches them ("scheme://host" patterns); nil with "*",
// which skips the check instead.
func originPatterns(origins []string) (patterns []string, anyOrigin bool) {
	if slices.Contains(origins, "*") {
		return nil, true
	}
	return origins, false
}
