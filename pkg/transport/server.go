package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pushcluster/pushcluster/internal/ratelog"
	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/limit"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// Defaults for Config.
const (
	DefaultRetry        = 2 * time.Second
	DefaultHeartbeat    = 15 * time.Second
	DefaultQueueBytes   = 4 << 20
	DefaultMaxPayload   = 64 << 10
	DefaultMaxChannels  = 64
	DefaultWriteTimeout = 10 * time.Second
	// DefaultDrainTimeout fits Kubernetes' default 30 s grace period with
	// room for the rest of the shutdown.
	DefaultDrainTimeout = 25 * time.Second
	// DefaultMaxConnectionsPerIP leaves room for a large office or carrier
	// NAT while one host cannot take the node's descriptors.
	DefaultMaxConnectionsPerIP = 4096
	// DefaultPublishRate is what one WebSocket connection may publish per
	// second (bursts of twice as many).
	DefaultPublishRate = 50
	// DefaultKeyPublishRate is what one API key, user or (on an open node)
	// address may publish per second over HTTP (bursts of twice as many).
	DefaultKeyPublishRate = 2000
)

// RetryAfterSeconds is the Retry-After of a connection refused at the limit.
const RetryAfterSeconds = 5

// Config configures a Server.
type Config struct {
	// Hub delivers messages to the server's connections. Required.
	Hub *hub.Hub
	// Store is where history comes from, and publishes go unless Publisher
	// is set. Required.
	Store *store.Store
	// Publisher appends published messages. Nil means the store, one round
	// trip per publish; a *store.Publisher pipelines concurrent ones.
	Publisher Publisher
	// Node is this node's name, shown to clients. Defaults to "node".
	Node string
	// Retry is the SSE reconnection time sent to browsers.
	// Defaults to DefaultRetry.
	Retry time.Duration
	// Heartbeat is how often idle connections get a keep-alive (an SSE
	// comment, a WebSocket ping). Defaults to DefaultHeartbeat.
	Heartbeat time.Duration
	// QueueBytes bounds each connection's queue of unsent frames; a client
	// that lets it fill is disconnected as a slow consumer. Frames are
	// shared between the connections of a channel, so a full queue costs
	// far less than this. It must hold a burst: one read of a channel
	// fans out up to a few hundred entries at once.
	// Defaults to DefaultQueueBytes.
	QueueBytes int
	// MaxPayload is the largest data a publish may carry, in bytes; a
	// WebSocket frame may be 4 KiB larger. Defaults to DefaultMaxPayload.
	MaxPayload int
	// MaxChannels is how many channels one connection may subscribe to.
	// Defaults to DefaultMaxChannels.
	MaxChannels int
	// WriteTimeout bounds one write to a client. Defaults to DefaultWriteTimeout.
	WriteTimeout time.Duration
	// DrainTimeout is how long a stopping node spreads the closing of its
	// connections over. Defaults to DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Version is the node's version, shown by /api/cluster.
	Version string
	// PresenceChannels opts channels in to presence events: each join and
	// leave of a channel named here (exactly, or by prefix with a trailing
	// '*') is published to the channel's presence stream, <channel>.presence.
	// Nil means none.
	PresenceChannels []string
	// MaxConnections bounds the SSE and WebSocket connections the server
	// holds; one more is refused with 503 and Retry-After, so the node keeps
	// the descriptors it needs for what it serves. Zero means no bound.
	MaxConnections int
	// StoreCLI is what redis-cli needs to reach the store ("-p 41234" for
	// an embedded one), shown in the demo page's XADD line. Empty means
	// nothing: a Redis on localhost:6379.
	StoreCLI string
	// Ready reports whether the node can serve; /readyz adds Redis
	// reachability. Nil means the hub's readiness.
	Ready func() bool
	// Auth tells who a request comes from and what it may do. Nil means
	// open: every connection and API call is allowed.
	Auth Authenticator
	// AllowedOrigins are the origins (scheme://host[:port]) whose pages may
	// open a WebSocket and read SSE and API answers with CORS, credentials
	// included; "*" allows any origin, without credentials. Nil means the
	// node's own origin only.
	AllowedOrigins []string
	// MaxConnectionsPerIP bounds the SSE and WebSocket connections from one
	// client address. Zero means DefaultMaxConnectionsPerIP; negative, no
	// bound.
	MaxConnectionsPerIP int
	// TrustedProxies are the peers whose X-Forwarded-For is believed for a
	// client's address. Nil means none: the peer's address is the client's.
	TrustedProxies []netip.Prefix
	// PublishRate bounds WebSocket publishes per second per connection.
	// Zero means DefaultPublishRate; negative, no bound.
	PublishRate float64
	// KeyPublishRate bounds HTTP publishes per second per API key, user or,
	// on an open node, client address. Zero means DefaultKeyPublishRate;
	// negative, no bound.
	KeyPublishRate float64
	// Logger receives connection events. Nil means discard.
	Logger *slog.Logger
}

// Validate reports every problem with cfg at once.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Hub == nil {
		errs = append(errs, errors.New("transport: no hub"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("transport: no store"))
	}
	if cfg.Retry < 0 || cfg.Heartbeat < 0 || cfg.WriteTimeout < 0 || cfg.DrainTimeout < 0 {
		errs = append(errs, errors.New("transport: durations must not be negative"))
	}
	if cfg.QueueBytes < 0 || cfg.MaxPayload < 0 || cfg.MaxChannels < 0 || cfg.MaxConnections < 0 {
		errs = append(errs, errors.New("transport: sizes must not be negative"))
	}
	return errors.Join(errs...)
}

func (cfg Config) withDefaults() Config {
	if cfg.Node == "" {
		cfg.Node = "node"
	}
	if cfg.Retry == 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.QueueBytes == 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.MaxChannels == 0 {
		cfg.MaxChannels = DefaultMaxChannels
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.Ready == nil {
		cfg.Ready = cfg.Hub.Ready
	}
	if cfg.Publisher == nil {
		cfg.Publisher = cfg.Store
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Auth == nil {
		cfg.Auth = openAuth{}
	}
	if cfg.MaxConnectionsPerIP == 0 {
		cfg.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	if cfg.PublishRate == 0 {
		cfg.PublishRate = DefaultPublishRate
	}
	if cfg.KeyPublishRate == 0 {
		cfg.KeyPublishRate = DefaultKeyPublishRate
	}
	return cfg
}

// Publisher appends a message to a channel and returns its entry ID. It
// must be safe for concurrent use.
type Publisher interface {
	Publish(ctx context.Context, channel string, m store.Message) (protocol.ID, error)
}

var (
	_ Publisher = (*store.Store)(nil)
	_ Publisher = (*store.Publisher)(nil)
)

// Server serves the node's HTTP surface. Its Handler goes into an
// http.Server; Run sends heartbeats and, when ctx ends, drains every
// connection so that clients reconnect elsewhere.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	demo    []byte
	cluster Cluster

	mu        sync.Mutex
	clients   map[client]int // → heartbeat slot
	byID      map[string][]client
	ending    map[client]struct{}
	nextSlot  int
	closing   bool
	stats     counters
	draining  atomic.Bool
	isolated  atomic.Bool
	presenceQ chan presenceEvent

	// conns counts tracked connections and the goroutines they start, so
	// that Run returns only once all of them have exited.
	conns sync.WaitGroup
	// poll writes backed-up sockets while Run runs (nil otherwise: each
	// then gets a writer goroutine).
	poll atomic.Pointer[poller]

	held       atomic.Int64 // stream slots taken: admitted and not yet released
	refusedLog *ratelog.Limiter

	expiries expiries
	perIP    *limit.Conns
	connRate *limit.Keyed // makes each connection's own limiter
	keyRate  *limit.Keyed
	handler  http.Handler
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg.withDefaults(), clients: make(map[client]int),
		byID: make(map[string][]client), ending: make(map[client]struct{}),
		refusedLog: ratelog.New(10 * time.Second), presenceQ: make(chan presenceEvent, presenceQueue)}
	s.perIP = limit.NewConns(s.cfg.MaxConnectionsPerIP)
	s.connRate = limit.NewKeyed(s.cfg.PublishRate, int(2*s.cfg.PublishRate))
	s.keyRate = limit.NewKeyed(s.cfg.KeyPublishRate, int(2*s.cfg.KeyPublishRate))
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /sse", s.serveSSE)
	s.mux.HandleFunc("GET /ws", s.serveWS)
	s.mux.HandleFunc("POST /api/publish", s.servePublish)
	s.mux.HandleFunc("GET /api/history", s.serveHistory)
	s.mux.HandleFunc("POST /api/session", s.serveSession)
	s.mux.HandleFunc("POST /api/ticket", s.serveTicket)
	s.mux.HandleFunc("POST /api/disconnect", s.serveDisconnect)
	s.mux.HandleFunc("GET /api/cluster", s.serveCluster)
	s.mux.HandleFunc("GET /api/presence", s.servePresence)
	s.mux.HandleFunc("GET /api/clients", s.serveClients)
	s.mux.HandleFunc("GET /status", s.serveStatus)
	s.mux.HandleFunc("GET /healthz", s.serveHealth)
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	s.demo = demo(s.cfg.Store.Prefix(), s.cfg.StoreCLI)
	alone, err := cluster.New(cluster.Config{Name: s.cfg.Node, Local: s, Version: s.cfg.Version})
	if err != nil {
		return nil, err
	}
	s.cluster = alone
	s.mux.HandleFunc("GET /{$}", s.serveDemo)
	s.handler = withCORS(s.mux, s.cfg.AllowedOrigins)
	return s, nil
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Run sends heartbeats until ctx ends, then drains every connection over
// the drain timeout, and returns once every connection goroutine has
// exited. Heartbeats are spread over heartbeatSlots ticks per interval, so that
// thousands of connections are not woken (and, for WebSocket pings, given a
// goroutine each) in the same instant.
const heartbeatSlots = 32

func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Heartbeat / heartbeatSlots)
	defer t.Stop()
	if p, err := newPoller(s.cfg.WriteTimeout); err != nil {
		s.cfg.Logger.Warn("no epoll instance: each backed-up connection gets a writer goroutine", "err", err)
	} else {
		s.poll.Store(p)
		defer p.stop() // after every connection has ended: a drain writes through it
	}
	stopPresence, presenceDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(presenceDone)
		s.publishPresence(stopPresence)
	}()
	for slot := 0; ; slot = (slot + 1) % heartbeatSlots {
		select {
		case <-ctx.Done():
			s.drain(s.cfg.DrainTimeout)
			s.conns.Wait()
			close(stopPresence)
			<-presenceDone
			return nil
		case <-t.C:
			for _, c := range s.inSlot(slot) {
				c.heartbeat()
			}
		}
	}
}

func (s *Server) inSlot(slot int) []client {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []client
	for c, sl := range s.clients {
		if sl == slot {
			out = append(out, c)
		}
	}
	return out
}

// Connections returns how many client connections are open.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

func (s *Server) snapshot() []client {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]client, 0, len(s.clients))
	for c := range s.clients {
		out = append(out, c)
	}
	return out
}

// track registers c; false once the server is shutting down.
func (s *Server) track(c client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.clients[c] = s.nextSlot
	s.nextSlot = (s.nextSlot + 1) % heartbeatSlots
	id := c.info().ID
	s.byID[id] = append(s.byID[id], c)
	s.gauge(c).Add(1)
	s.conns.Add(1)
	return true
}

// untrack forgets c and gives back its stream slot.
func (s *Server) untrack(c client) {
	s.mu.Lock()
	_, ok := s.clients[c]
	if ok {
		delete(s.clients, c)
		delete(s.ending, c)
		id := c.info().ID
		s.byID[id] = slices.DeleteFunc(s.byID[id], func(o client) bool { return o == c })
		if len(s.byID[id]) == 0 {
			delete(s.byID, id)
		}
	}
	s.mu.Unlock()
	if ok {
		s.gauge(c).Add(-1)
		s.conns.Done()
		s.release(c.address())
	}
}

// writeBackedUp has the poller write box's socket raw once it backs up.
func (s *Server) writeBackedUp(box *outbox, raw syscall.RawConn) {
	if p := s.poll.Load(); p != nil && raw != nil && box.direct != nil {
		box.mu.Lock()
		box.poll, box.raw = p, raw
		box.mu.Unlock()
	}
}

// spawn runs f on a goroutine that Run waits for. Only a tracked
// connection may spawn, so the wait group never restarts from zero.
func (s *Server) spawn(f func()) {
	s.conns.Add(1)
	go func() {
		defer s.conns.Done()
		f()
	}()
}

// admit takes a stream slot for a connection about to open from addr, or
// answers 503 with Retry-After and reports false when all MaxConnections
// are taken (429 when addr holds all of its MaxConnectionsPerIP). The slot
// is given back by untrack, or by release if the connection never gets
// tracked.
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

// refusePerIP answers a stream from an address that holds all its slots.
func (s *Server) refusePerIP(w http.ResponseWriter) {
	s.stats.refusedPerIP.Add(1)
	if n, ok := s.refusedLog.Allow(); ok {
		s.cfg.Logger.Warn("refused streams: an address at its connection limit", "refused", n, "limit", s.cfg.MaxConnectionsPerIP)
	}
	w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	protocol.WriteError(w, http.StatusTooManyRequests, protocol.CodeTooManyFromIP,
		fmt.Errorf("more than %d connections from one address", s.cfg.MaxConnectionsPerIP))
}

// refuse answers a stream over the limit. An EventSource closes for good
// on it, as on any non-200: pages reopen one after a while (PROTOCOL.md).
func (s *Server) refuse(w http.ResponseWriter) {
	s.stats.refused.Add(1)
	if n, ok := s.refusedLog.Allow(); ok {
		s.cfg.Logger.Warn("refused streams: at the connection limit", "refused", n, "limit", s.cfg.MaxConnections)
	}
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	h.Set("Connection", "close")
	protocol.WriteError(w, http.StatusServiceUnavailable, protocol.CodeTooManyConns, errors.New("the node is at its connection limit"))
}

// query parses the request's query. r.URL.Query drops what it cannot
// parse (more than 10,000 parameters, a ';'), which would be answered as a
// missing channel; the client is told what is wrong instead.
func query(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("malformed query: %w", err)
	}
	return q, nil
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
	for _, ch := range chs {
		if err := protocol.ValidateChannel(ch); err != nil {
			return nil, err
		}
	}
	return chs, nil
}
