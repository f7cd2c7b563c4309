package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/limit"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// WebSocket close codes the node uses beyond RFC 6455's.
const (
	// StatusSlowConsumer: the client did not read fast enough; reconnect
	// and resubscribe with since.
	StatusSlowConsumer websocket.StatusCode = 4008
	// StatusDisconnected: POST /api/disconnect closed the connection; do
	// not reconnect on its own.
	StatusDisconnected websocket.StatusCode = 4009
	// StatusTokenExpired: the connection's token expired before an auth
	// frame renewed it; reconnect with a fresh token or ticket.
	StatusTokenExpired websocket.StatusCode = 4001
)

// wsConn is one WebSocket connection: a read goroutine that handles client
// frames, and an outbox written straight to the socket (wsWire).
type wsConn struct {
	srv     *Server
	client  string
	session string
	since   time.Time
	ws      *websocket.Conn
	box     *outbox
	ctx     context.Context
	cancel  context.CancelFunc

	mu      sync.Mutex
	subs    map[string]*hub.Sub
	wire    *wsWire
	pinging atomic.Bool // a ping waits for its pong
	window  uint32      // the peer's receive window at the last heartbeat

	addr netip.Addr
	exp  expiryEntry
	// who and pubLimit belong to the frame handler (one frame at a time);
	// pubLimit is made on the first publish, so idle connections carry none.
	who      *auth.Principal
	pubLimit *rate.Limiter
}

var _ hub.Conn = (*wsConn)(nil)

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	q, err := query(r)
	if err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidQuery, err)
		return
	}
	who, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	var channels []string
	if len(q["channel"]) > 0 {
		if channels, err = s.parseChannels(q["channel"]); err != nil {
			protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidChannel, err)
			return
		}
	}
	session, id, err := requestSession(q, who.Subject)
	if err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidSession, err)
		return
	}
	addr := limit.ClientAddr(r, s.cfg.TrustedProxies)
	patterns, anyOrigin := originPatterns(s.cfg.AllowedOrigins)
	if s.sendingOn() {
		// A draining or isolated node: the client reconnects at once, through
		// the load balancer, to another node, and resubscribes there.
		if ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: patterns, InsecureSkipVerify: anyOrigin}); err == nil {
			s.stats.sentOn.Add(1)
			ws.Close(websocket.StatusServiceRestart, "node draining: reconnect to another node")
		}
		return
	}
	if !s.admit(w, addr) {
		return
	}
	rec := &hijackRecorder{ResponseWriter: w, timeout: s.cfg.WriteTimeout}
	var c *wsConn // set before the library reads a frame
	ws, err := websocket.Accept(rec, r, &websocket.AcceptOptions{OriginPatterns: patterns, InsecureSkipVerify: anyOrigin,
		OnPongReceived: func(context.Context, []byte) { c.onPong() }})
	if err != nil {
		s.release(addr)
		s.cfg.Logger.Debug("refused a WebSocket handshake", "err", err)
		return
	}
	// Frames over MaxPayload+4KiB get an error frame; only frames past this
	// hard limit close the connection.
	ws.SetReadLimit(int64(16*s.cfg.MaxPayload + 4096))
	c = &wsConn{srv: s, client: id, session: session, since: time.Now().UTC(), ws: ws, wire: rec.wire, addr: addr, who: who}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.box = newOutbox(c, s.cfg.QueueBytes)
	c.wire.box = c.box
	if !s.track(c) {
		s.release(addr)
		ws.Close(websocket.StatusServiceRestart, "node shutting down: reconnect")
		return
	}
	c.box.spawn = s.spawn
	s.writeBackedUp(c.box, c.wire.raw)
	s.expiries.add(c, who.Expires)
	c.box.offer(wsEncode(&protocol.ServerFrame{Type: "welcome", Client: c.client, Session: c.session, Node: s.cfg.Node}))
	since := q.Get("since")
	if len(channels) > 1 && since != "" {
		c.reject(nil, protocol.CodeInvalidID, errors.New("since needs exactly one channel; subscribe to each with its own since"))
		channels = nil
	}
	for _, ch := range channels {
		c.subscribe(protocol.ClientFrame{Type: protocol.TypeSubscribe, Channel: ch, Since: since})
	}
	s.spawn(c.readLoop)
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
			c.box.close(err)
			return
		}
		b, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err != nil {
			c.box.close(err)
			return
		}
		switch {
		case int64(len(b)) > limit:
			if _, err := io.Copy(io.Discard, r); err != nil {
				c.box.close(err)
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
		c.reply(&protocol.ServerFrame{Type: "pong", Ref: f.Ref})
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
	c.mu.Lock()
	_, dup := c.subs[f.Channel]
	n := len(c.subs)
	c.mu.Unlock()
	switch {
	case !c.who.CanRead(f.Channel):
		c.srv.stats.forbidden.Add(1)
		c.reject(f.Ref, protocol.CodeForbidden, errCannotRead(f.Channel))
		return
	case dup:
		c.reject(f.Ref, protocol.CodeAlreadySub, fmt.Errorf("already subscribed to %q", f.Channel))
		return
	case n >= c.srv.cfg.MaxChannels:
		c.reject(f.Ref, protocol.CodeTooMany, fmt.Errorf("more than %d channels", c.srv.cfg.MaxChannels))
		return
	}
	sub, err := c.srv.cfg.Hub.Join(c.ctx, c, f.Channel, since)
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
	c.mu.Lock()
	if c.subs == nil {
		c.subs = make(map[string]*hub.Sub, 1)
	}
	c.subs[f.Channel] = sub
	c.mu.Unlock()
	c.srv.joined(c, f.Channel)
	c.reply(&protocol.ServerFrame{Type: "subscribed", Ref: f.Ref, Channel: f.Channel, Position: sub.Start().String()})
	if err := c.srv.cfg.Hub.Attach(c.ctx, sub); err != nil {
		c.box.close(err)
	}
}

func (c *wsConn) unsubscribe(f protocol.ClientFrame) {
	c.mu.Lock()
	sub := c.subs[f.Channel]
	delete(c.subs, f.Channel)
	c.mu.Unlock()
	if sub == nil {
		c.reject(f.Ref, protocol.CodeNotSub, fmt.Errorf("not subscribed to %q", f.Channel))
		return
	}
	c.srv.cfg.Hub.Leave(sub)
	c.srv.left(c, f.Channel)
	c.reply(&protocol.ServerFrame{Type: "unsubscribed", Ref: f.Ref, Channel: f.Channel})
}

func (c *wsConn) publish(f protocol.ClientFrame) {
	p := protocol.PublishRequest{Channel: f.Channel, Client: f.Client, Event: f.Event, Data: f.Data, To: f.To}
	if f.ExceptSelf {
		p.Exclude = c.client
	}
	if !c.allowPublish(f, p) {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	if p.Client != "" {
		c.publishDirect(ctx, f, p)
		return
	}
	id, perr := c.srv.publish(ctx, p)
	if perr != nil {
		c.reject(f.Ref, perr.code, perr.err)
		return
	}
	c.srv.stats.pubWS.Add(1)
	c.reply(&protocol.ServerFrame{Type: "ack", Ref: f.Ref, Channel: f.Channel, ID: id.String()})
}

// publishDirect sends a message to one client wherever it is.
func (c *wsConn) publishDirect(ctx context.Context, f protocol.ClientFrame, p protocol.PublishRequest) {
	res, perr := c.srv.publishDirect(ctx, p)
	if perr != nil {
		c.reject(f.Ref, perr.code, perr.err)
		return
	}
	c.srv.stats.pubWS.Add(1)
	c.reply(&protocol.ServerFrame{Type: "ack", Ref: f.Ref, Client: p.Client, ID: res.ID, Delivered: &res.Delivered})
}

// reply queues a reply behind whatever is already queued, waiting for room.
func (c *wsConn) reply(f *protocol.ServerFrame) {
	c.box.send(c.ctx, wsEncode(f))
}

func (c *wsConn) reject(ref []byte, code string, err error) {
	c.reply(&protocol.ServerFrame{Type: "error", Ref: ref, Code: code, Message: err.Error()})
}

func (c *wsConn) Client() string { return c.client }

func (c *wsConn) Offer(s *hub.Sub, msgs []*hub.Message) bool {
	return c.box.offerWith(func() queued { return wsFrames(msgs) })
}

func (c *wsConn) Send(ctx context.Context, s *hub.Sub, msgs []*hub.Message) error {
	return c.box.sendWith(ctx, func() queued { return wsFrames(msgs) })
}

// wsFrames queues a run of messages as frames shared with every WebSocket
// subscriber given them.
func wsFrames(msgs []*hub.Message) queued {
	if len(msgs) == 1 {
		return one(wsFrame(msgs[0]))
	}
	return run(hub.Frames(msgs, hub.FrameWS, wsFrame))
}

// wsFrame encodes m once for every WebSocket subscriber of its channel.
func wsFrame(m *hub.Message) []byte {
	if m.Gap != nil {
		g := m.Gap
		return wsEncode(&protocol.ServerFrame{Type: protocol.TypeGap, Channel: m.Channel, Reason: g.Reason,
			From: g.From.String(), Resume: g.Resume.String()})
	}
	return m.Frame(hub.FrameWS, wsMessageFrame)
}

func wsMessageFrame(m *hub.Message) []byte {
	e := &m.Entry
	return wsEncode(&protocol.ServerFrame{Type: protocol.TypeMessage, Channel: m.Channel,
		ID: e.ID.String(), Event: e.Event, Data: &e.Data})
}

func (c *wsConn) Kick(reason error) { c.box.close(reason) }

// errNoPong closes a WebSocket whose peer left a ping unanswered for a
// whole heartbeat interval.
var errNoPong = errors.New("transport: no pong for a heartbeat interval")

// wsPing is the node's ping: an empty ping frame, shared by every
// connection. The library reports the pong (onPong); a ping of the node's
// own, queued like any frame, holds no goroutine while it waits for it.
var wsPing = []byte{0x89, 0x00}

// heartbeat pings the peer. The previous ping still waiting for its pong
// means the peer is gone, unless it shows it is reading: frames were
// written since the last heartbeat, or its receive window moved. A peer
// working through a burst answers the ping only once it reaches it, behind
// the frames sent first. The connection is then closed.
func (c *wsConn) heartbeat() {
	reading := c.wire.wrote.Swap(false)
	reading = c.peerWindowMoved() || reading
	if !c.pinging.CompareAndSwap(false, true) {
		if !reading {
			c.box.close(errNoPong)
		}
		return
	}
	if !c.box.offer(wsPing) { // the queue is full: no ping to wait for
		c.pinging.Store(false)
	}
}

// onPong is called by the library's reader for every pong.
func (c *wsConn) onPong() { c.pinging.Store(false) }

func (c *wsConn) end(reason error) { c.box.closeAfterFlush(reason) }

func (c *wsConn) info() cluster.Client {
	return cluster.Client{ID: c.client, Node: c.srv.cfg.Node, Transport: "ws", Since: c.since}
}

func (c *wsConn) subscribedTo(channel string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.subs[channel]
	return ok
}

func (c *wsConn) direct(m cluster.Direct) bool {
	f := &protocol.ServerFrame{Type: "direct", ID: m.ID, Event: m.Event, Data: &m.Data}
	return c.box.offer(wsEncode(f)) && !c.box.isClosed()
}

func (c *wsConn) writeFrames(qs []queued) error { return c.wire.writeFrames(qs) }

func (c *wsConn) tryWrite(q *queued) error { return c.wire.tryWrite(q) }

// closeWire closes with a status that tells the client why. The close
// handshake may wait on the peer, so it runs on its own goroutine.
func (c *wsConn) closeWire(reason error) {
	c.srv.cfg.Logger.Debug("closing a WebSocket", "client", c.client, "reason", reason)
	code, text := websocket.StatusInternalError, "closed"
	switch {
	case errors.Is(reason, hub.ErrSlowConsumer):
		code, text = StatusSlowConsumer, "slow consumer: resubscribe with since"
	case errors.Is(reason, errShutdown), errors.Is(reason, errDrain):
		code, text = websocket.StatusServiceRestart, "node restarting: reconnect and resubscribe with since"
	case errors.Is(reason, errShed):
		code, text = websocket.StatusServiceRestart, "moved to even out load: reconnect and resubscribe with since"
	case errors.Is(reason, errDisconnected):
		code, text = StatusDisconnected, "disconnected by the server"
	case errors.Is(reason, errTokenExpired):
		code, text = StatusTokenExpired, "token expired: reconnect with a fresh token"
	case errors.Is(reason, errNoPong): // the peer is gone: no handshake to wait for
		c.srv.spawn(func() {
			c.ws.CloseNow()
			c.cancel()
		})
		return
	case websocket.CloseStatus(reason) != -1, errors.Is(reason, io.EOF), reason == nil:
		code = websocket.StatusNormalClosure
	}
	c.srv.spawn(func() {
		c.ws.Close(code, text)
		c.cancel()
	})
}

func (c *wsConn) address() netip.Addr { return c.addr }

func (c *wsConn) expiryEntry() *expiryEntry { return &c.exp }

func (c *wsConn) cleanup() {
	c.srv.expiries.remove(c)
	c.mu.Lock()
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	for ch, sub := range subs {
		c.srv.cfg.Hub.Leave(sub)
		c.srv.left(c, ch)
	}
	c.srv.untrack(c)
	c.cancel()
}

// wsEncode is f as a WebSocket text frame, ready for the wire.
func wsEncode(f *protocol.ServerFrame) []byte { return wsText(f.Encode()) }
