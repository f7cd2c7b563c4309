package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pushcluster/pushcluster/internal/backoff"
	"github.com/pushcluster/pushcluster/internal/wire"
	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/events"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/limit"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// Reasons a connection is ended on purpose. Each ends it cleanly after
// what is queued has been written: an SSE stream is finished (the browser
// reconnects after its retry time), a WebSocket gets a close code.
var (
	// errShutdown: the node is stopping now.
	errShutdown = errors.New("transport: node shutting down")
	// errDrain: the node is draining before it stops.
	errDrain = errors.New("transport: node draining")
	// errShed: the node carries more than its share of the cluster.
	errShed = errors.New("transport: moved to even out the cluster's load")
	// errDisconnected: POST /api/disconnect asked for it.
	errDisconnected = errors.New("transport: disconnected by the server")
	// errTokenExpired ends a connection whose token expired.
	errTokenExpired = errors.New("transport: token expired: authenticate again")
)

// endsCleanly reports whether reason is an end on purpose: it comes after
// the queue is flushed, so no writer holds the socket, and the client is
// to reconnect in the ordinary way. A kicked slow consumer's writer may be
// blocked in a write, and a broken connection has no one to tell.
func endsCleanly(reason error) bool {
	for _, r := range []error{errDrain, errShed, errDisconnected, errShutdown, errTokenExpired} {
		if errors.Is(reason, r) {
			return true
		}
	}
	return false
}

// adapter is what a transport implements; the connection core (conn) does
// the rest. The core calls the encoders under the outbox's lock, in queue
// order, from the hub's fan-out: they must not block, nor call back into
// the core. docs: pkg/transport's doc.go.
type adapter interface {
	// messages encodes a run of messages of sub's channel for the wire:
	// entries and gap notices, to be written in order.
	messages(sub *hub.Sub, msgs []*hub.Message) wire.Queued
	// direct encodes a message to this client alone.
	direct(m cluster.Direct) []byte
	// heartbeat keeps an idle connection alive, and may find its peer gone.
	heartbeat()
	// end finishes the connection for reason once what is queued is
	// written, telling the client why in the transport's own terms.
	end(reason error)
	// CloseWire is told, once, that the connection is over and why: the
	// outbox closed.
	wire.Closer
}

// conn is one client connection, whatever its transport: who it is, the
// channels it listens on, its outbox, its slot and its token's expiry. It
// is the hub's Conn, the registry's entry and the expiry queue's item; its
// transport's adapter encodes for the wire and ends it.
type conn struct {
	srv     *Server
	a       adapter
	kind    *kind
	client  string
	session string
	// who is the credential the connection was admitted with (a WebSocket
	// auth frame replaces it).
	who    atomic.Pointer[auth.Principal]
	life   uint64 // its number in the lifecycle events; 0 without them
	since  time.Time
	addr   netip.Addr
	box    *wire.Outbox
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex
	subs []*hub.Sub // sorted by channel; guarded by mu

	exp expiryEntry
}

var _ hub.Conn = (*conn)(nil)

// handshake is what every transport's request carries, read and checked:
// who asks, for which channels, as which client, from where.
type handshake struct {
	q        url.Values
	who      *auth.Principal
	channels []string // sorted, deduplicated, all readable; nil when none asked
	session  string
	client   string
	addr     netip.Addr
}

// shake reads r's handshake for a connection of kind k: its query, its
// credential, its channels and its session. With fixed set (SSE, long
// polling), the channels are the connection's for its life: at least one
// is required, and each must be readable and allowed by the subscribe hook
// (else 403). Without (WebSocket), they are optional, and each
// subscription checks its own right. On a problem it answers r (400, 401,
// 403, 503) and reports false.
func (s *Server) shake(w http.ResponseWriter, r *http.Request, k *kind, fixed bool) (*handshake, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		// r.URL.Query drops what it cannot parse (more than 10,000
		// parameters, a ';'), which would be answered as a missing channel.
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidQuery, fmt.Errorf("malformed query: %w", err))
		return nil, false
	}
	who, ok := s.auth.Require(w, r)
	if !ok {
		return nil, false
	}
	h := &handshake{q: q, who: who, addr: limit.ClientAddr(r, s.cfg.TrustedProxies)}
	if fixed || len(q["channel"]) > 0 {
		if h.channels, err = s.parseChannels(q["channel"]); err != nil {
			protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidChannel, err)
			return nil, false
		}
	}
	for _, ch := range h.channels {
		if fixed && !who.CanRead(ch) {
			s.auth.Forbid(w, auth.ErrCannotRead(ch))
			return nil, false
		}
	}
	if h.session, h.client, err = requestSession(q, who.Subject); err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidSession, err)
		return nil, false
	}
	for _, ch := range h.channels {
		if !fixed {
			break // each subscribe frame asks for its own
		}
		if err := s.auth.AllowSubscribe(r.Context(), who, h.client, ch, k.name); err != nil {
			status, code := auth.Code(err)
			if status == http.StatusForbidden {
				s.auth.Forbid(w, err)
			} else {
				protocol.WriteError(w, status, code, err)
			}
			return nil, false
		}
	}
	return h, true
}

// parseChannels validates, sorts and deduplicates the requested channels.
func (s *Server) parseChannels(raw []string) ([]string, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: no channel given", protocol.ErrInvalidChannel)
	}
	chs := slices.Clone(raw)
	slices.Sort(chs)
	chs = slices.Compact(chs)
	if len(chs) > s.cfg.MaxChannels {
		return nil, fmt.Errorf("%w: more than %d channels", protocol.ErrInvalidChannel, s.cfg.MaxChannels)
	}
	for i, ch := range chs {
		if err := protocol.ValidateChannel(ch); err != nil {
			return nil, err
		}
		// The parsed query's strings share the request's query, token and
		// all; a connection keeps its channels for its life, not that.
		chs[i] = strings.Clone(ch)
	}
	return chs, nil
}

// positions reads a position a client brought (Last-Event-ID, a long
// poll's since) for channels: nil for none, and a gap reason for one that
// is no position in these channels. A bad one is not an error: browsers
// give up for good on a non-200 answer, so the client is told with a gap
// instead, and starts from now.
func (s *Server) positions(since string, channels []string) ([]protocol.ID, string) {
	if since == "" {
		return nil, ""
	}
	pos, err := protocol.DecodeCursor(since, channels)
	switch {
	case errors.Is(err, protocol.ErrCursorMismatch):
		s.stats.gapsMismatch.Add(1)
		return nil, "mismatch"
	case err != nil:
		s.stats.gapsMalformed.Add(1)
		return nil, store.GapMalformed
	}
	return pos, ""
}

// requestSession returns the session a request's query asks for (the
// session parameter), or a new one, and the client ID it gives user.
func requestSession(q url.Values, user string) (token, client string, err error) {
	token = strings.Clone(q.Get("session")) // kept for the connection's life: not the whole query
	if token == "" {
		token, client = auth.NewSession(user)
		return token, client, nil
	}
	client, err = auth.SessionClient(token, user)
	return token, client, err
}

// initConn sets up c, the core of a connection h opens on a transport of
// kind k whose adapter is a (the struct c is part of, as a rule).
func (s *Server) initConn(c *conn, h *handshake, k *kind, a adapter) {
	c.srv, c.a, c.kind = s, a, k
	c.client, c.session, c.since, c.addr = h.client, h.session, time.Now().UTC(), h.addr
	c.who.Store(h.who)
	if s.life != nil {
		c.life = s.life.NewConn()
	}
}

// lifeConn is c as the lifecycle events describe it.
func (c *conn) lifeConn() events.Conn {
	return events.Conn{N: c.life, Client: c.client, User: c.who.Load().Subject, Transport: c.kind.name}
}

// endReason names why a connection ended, for the lifecycle events.
func endReason(err error) string {
	switch {
	case errors.Is(err, errDrain), errors.Is(err, errShutdown):
		return events.ReasonDrained
	case errors.Is(err, errShed):
		return events.ReasonShed
	case errors.Is(err, hub.ErrSlowConsumer), errors.Is(err, wire.ErrPeerNotReading):
		return events.ReasonSlow
	case errors.Is(err, errTokenExpired):
		return events.ReasonExpired
	case errors.Is(err, errDisconnected):
		return events.ReasonKicked
	}
	return events.ReasonClosed
}

// open starts c on its open wire w: its outbox, its place in the registry,
// the poller for its socket raw (nil: none), and the expiry of its token
// (zero: never). It reports false when the node is shutting down; the
// caller then closes the wire, and the slot is given back.
func (s *Server) open(c *conn, w wire.Writer, raw syscall.RawConn, expires time.Time) bool {
	c.box = wire.NewOutbox(w, c.a, s.cfg.QueueBytes)
	if !s.reg.track(c) {
		s.release(c.addr)
		return false
	}
	c.box.Spawn = s.reg.spawn
	c.box.UsePoller(s.poll.Load(), raw)
	s.expiries.add(c, expires)
	if s.life != nil {
		s.life.Connected(c.lifeConn())
	}
	return true
}

// Client is the client's ID, matched against an entry's to and exclude.
func (c *conn) Client() string { return c.client }

// Offer queues live messages, as the hub's fan-out gives them.
func (c *conn) Offer(s *hub.Sub, msgs []*hub.Message) bool {
	return c.box.OfferWith(func() wire.Queued { return c.a.messages(s, msgs) })
}

// Send queues replayed messages, waiting for room.
func (c *conn) Send(ctx context.Context, s *hub.Sub, msgs []*hub.Message) error {
	return c.box.SendWith(ctx, func() wire.Queued { return c.a.messages(s, msgs) })
}

// Kick cuts the connection off: a slow consumer.
func (c *conn) Kick(reason error) { c.box.Close(reason) }

func (c *conn) info() cluster.Client {
	return cluster.Client{ID: c.client, Node: c.srv.reg.node, Transport: c.kind.name, Since: c.since}
}

// direct queues a message to this one connection; false when its queue is
// full or it is closed.
func (c *conn) direct(m cluster.Direct) bool {
	return c.box.Offer(c.a.direct(m)) && !c.box.IsClosed()
}

// expire ends the connection because its token expired.
func (c *conn) expire() {
	c.srv.stats.expired.Add(1)
	c.a.end(errTokenExpired)
}

func (c *conn) expiryEntry() *expiryEntry { return &c.exp }

// join subscribes the connection to channel after since (nil: from now):
// the start position is resolved, and any gap found, but nothing is
// delivered until attach.
func (c *conn) join(ctx context.Context, channel string, since *protocol.ID) (*hub.Sub, error) {
	sub, err := c.srv.hub.Join(ctx, c, channel, since)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	i, _ := slices.BinarySearchFunc(c.subs, channel, byChannel)
	c.subs = slices.Insert(c.subs, i, sub)
	c.mu.Unlock()
	c.srv.reg.listen(c, channel)
	c.srv.joined(c, channel)
	if c.srv.life != nil {
		c.srv.life.Subscribed(c.lifeConn(), channel)
	}
	return sub, nil
}

// joinRetrying joins channel, retrying while Redis is away: the
// connection stays open and the subscription starts once it is back.
func (c *conn) joinRetrying(channel string, since *protocol.ID) (*hub.Sub, error) {
	b := backoff.New(50*time.Millisecond, 2*time.Second)
	for {
		sub, err := c.join(c.ctx, channel, since)
		if err == nil || c.ctx.Err() != nil || errors.Is(err, protocol.ErrInvalidChannel) || errors.Is(err, store.ErrUnreadable) {
			return sub, err
		}
		if !b.Sleep(c.ctx) {
			return nil, c.ctx.Err()
		}
	}
}

// attach replays what sub is missing and hands it over to live delivery.
func (c *conn) attach(sub *hub.Sub) error { return c.srv.hub.Attach(c.ctx, sub) }

// leave ends the subscription to channel; false when there was none.
func (c *conn) leave(channel string) bool {
	c.mu.Lock()
	i, ok := slices.BinarySearchFunc(c.subs, channel, byChannel)
	var sub *hub.Sub
	if ok {
		sub = c.subs[i]
		c.subs = slices.Delete(c.subs, i, i+1)
	}
	c.mu.Unlock()
	if !ok {
		return false
	}
	c.srv.hub.Leave(sub)
	c.srv.reg.unlisten(c, channel)
	c.srv.left(c, channel)
	if c.srv.life != nil {
		c.srv.life.Unsubscribed(c.lifeConn(), channel, "unsubscribed")
	}
	return true
}

func byChannel(s *hub.Sub, channel string) int { return strings.Compare(s.Channel(), channel) }

// subscribedTo reports whether the connection listens on channel.
func (c *conn) subscribedTo(channel string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := slices.BinarySearchFunc(c.subs, channel, byChannel)
	return ok
}

// subscriptions returns how many channels the connection listens on.
func (c *conn) subscriptions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subs)
}

// channels lists the channels the connection listens on.
func (c *conn) channels() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.subs))
	for i, s := range c.subs {
		out[i] = s.Channel()
	}
	return out
}

// cleanup leaves every channel and gives the connection's slot back; it
// runs once the connection is over, once.
func (c *conn) cleanup() {
	c.srv.expiries.remove(c)
	c.mu.Lock()
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	reason := ""
	if c.srv.life != nil && c.box != nil {
		reason = endReason(c.box.Reason())
	}
	for _, sub := range subs {
		c.srv.hub.Leave(sub)
		c.srv.reg.unlisten(c, sub.Channel())
		c.srv.left(c, sub.Channel())
		if c.srv.life != nil {
			c.srv.life.Unsubscribed(c.lifeConn(), sub.Channel(), reason)
		}
	}
	if c.srv.reg.untrack(c) {
		c.srv.release(c.addr)
		if c.srv.life != nil {
			c.srv.life.Disconnected(c.lifeConn(), reason)
		}
	}
	c.cancel()
}

// admit takes a connection slot for a connection about to open from addr,
// or answers 503 with Retry-After and reports false when all
// MaxConnections are taken (429 when addr holds all of its
// MaxConnectionsPerIP). The slot is given back by cleanup, or by release
// if the connection never opens.
func (s *Server) admit(w http.ResponseWriter, addr netip.Addr) bool {
	if !s.perIP.Acquire(addr) {
		s.refusePerIP(w)
		return false
	}
	limit := int64(s.cfg.MaxConnections)
	for {
		n := s.held.Load()
		if limit > 0 && n >= limit {
			s.perIP.Release(addr)
			s.refuse(w)
			return false
		}
		if s.held.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *Server) release(addr netip.Addr) {
	s.held.Add(-1)
	s.perIP.Release(addr)
}

// refusePerIP answers a connection from an address that holds all its slots.
func (s *Server) refusePerIP(w http.ResponseWriter) {
	s.stats.refusedPerIP.Add(1)
	if n, ok := s.refusedLog.Allow(); ok {
		s.log.Warn("refused connections: an address at its connection limit", "refused", n, "limit", s.cfg.MaxConnectionsPerIP)
	}
	w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	protocol.WriteError(w, http.StatusTooManyRequests, protocol.CodeTooManyFromIP,
		fmt.Errorf("more than %d connections from one address", s.cfg.MaxConnectionsPerIP))
}

// refuse answers a connection over the limit. An EventSource closes for
// good on it, as on any non-200: pages reopen one after a while
// (PROTOCOL.md).
func (s *Server) refuse(w http.ResponseWriter) {
	s.stats.refused.Add(1)
	if n, ok := s.refusedLog.Allow(); ok {
		s.log.Warn("refused connections: at the connection limit", "refused", n, "limit", s.cfg.MaxConnections)
	}
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	h.Set("Connection", "close")
	protocol.WriteError(w, http.StatusServiceUnavailable, protocol.CodeTooManyConns, errors.New("the node is at its connection limit"))
}
