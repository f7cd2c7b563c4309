package transport

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushcluster/pushcluster/internal/ratelog"
	"github.com/pushcluster/pushcluster/internal/wire"
	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/events"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/limit"
	"github.com/pushcluster/pushcluster/pkg/publish"
)

// Defaults for Config.
const (
	DefaultRetry        = 2 * time.Second
	DefaultHeartbeat    = 15 * time.Second
	DefaultQueueBytes   = 4 << 20
	DefaultMaxPayload   = publish.DefaultMaxPayload
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
	// DefaultPollLinger is long enough for a long-polling client on a slow
	// network to poll again, short enough that presence soon forgets one
	// that went away.
	DefaultPollLinger = 10 * time.Second
)

// RetryAfterSeconds is the Retry-After of a connection refused at the limit.
const RetryAfterSeconds = 5

// Config tunes the transports. Every field's zero value means the default
// named on it; where a negative value means something (no bound), the
// field says so.
type Config struct {
	// Retry is the SSE reconnection time sent to browsers.
	// Zero means DefaultRetry.
	Retry time.Duration
	// Heartbeat is how often idle connections get a keep-alive (an SSE
	// comment, a WebSocket ping). Zero means DefaultHeartbeat.
	Heartbeat time.Duration
	// QueueBytes bounds each connection's queue of unsent frames; a client
	// that lets it fill is disconnected as a slow consumer. Frames are
	// shared between the connections of a channel, so a full queue costs
	// far less than this. It must hold a burst: one read of a channel
	// fans out up to a few hundred entries at once.
	// Zero means DefaultQueueBytes.
	QueueBytes int
	// MaxPayload is the largest data a publish may carry, in bytes; a
	// WebSocket frame may be 4 KiB larger. Zero means DefaultMaxPayload.
	MaxPayload int
	// MaxChannels is how many channels one connection may subscribe to.
	// Zero means DefaultMaxChannels.
	MaxChannels int
	// WriteTimeout bounds each wait of a write to a client.
	// Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// DrainTimeout is how long a stopping node spreads the closing of its
	// connections over. Zero means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// PresenceChannels opts channels in to presence events: each join and
	// leave of a channel named here (exactly, or by prefix with a trailing
	// '*') is published to the channel's presence stream, <channel>.presence.
	// Nil means none.
	PresenceChannels []string
	// MaxConnections bounds the connections the transports hold; one more
	// is refused with 503 and Retry-After, so the node keeps the
	// descriptors it needs for what it serves. Zero means no bound: the
	// node sets one from its open-file limit.
	MaxConnections int
	// AllowedOrigins are the origins (scheme://host[:port]) whose pages may
	// open a WebSocket; "*" allows any. Nil means the node's own origin
	// only.
	AllowedOrigins []string
	// MaxConnectionsPerIP bounds the connections from one client address.
	// Zero means DefaultMaxConnectionsPerIP; negative, no bound.
	MaxConnectionsPerIP int
	// TrustedProxies are the peers whose X-Forwarded-For is believed for a
	// client's address. Nil means none: the peer's address is the client's.
	TrustedProxies []netip.Prefix
	// PublishRate bounds WebSocket publishes per second per connection.
	// Zero means DefaultPublishRate; negative, no bound.
	PublishRate float64
	// PollLinger is how long a long-polling client stays connected after
	// an answer without polling again: what arrives meanwhile waits for its
	// next poll. Zero means DefaultPollLinger.
	PollLinger time.Duration
}

// Validate reports every problem with cfg at once.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Retry < 0 || cfg.Heartbeat < 0 || cfg.WriteTimeout < 0 || cfg.DrainTimeout < 0 || cfg.PollLinger < 0 {
		errs = append(errs, errors.New("transport: durations must not be negative"))
	}
	if cfg.QueueBytes < 0 || cfg.MaxPayload < 0 || cfg.MaxChannels < 0 || cfg.MaxConnections < 0 {
		errs = append(errs, errors.New("transport: sizes must not be negative"))
	}
	return errors.Join(errs...)
}

func (cfg Config) withDefaults() Config {
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
	if cfg.MaxConnectionsPerIP == 0 {
		cfg.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	if cfg.PublishRate == 0 {
		cfg.PublishRate = DefaultPublishRate
	}
	if cfg.PollLinger == 0 {
		cfg.PollLinger = DefaultPollLinger
	}
	return cfg
}

// Parts are what the transports work with, built by whoever builds the
// node.
type Parts struct {
	// Registry holds the connections. Required.
	Registry *Registry
	// Hub delivers messages to the connections. Required.
	Hub *hub.Hub
	// Auth tells who a request comes from. Required: an Auth with nothing
	// configured lets everyone in.
	Auth *auth.Auth
	// Publisher carries out WebSocket publish frames. Required.
	Publisher *publish.Publisher
	// Appender publishes presence events. Required when Config names
	// PresenceChannels.
	Appender publish.Appender
	// Lifecycle records connections and subscriptions as they begin and
	// end (the lifecycle events). Nil means none.
	Lifecycle Lifecycle
	// Logger receives connection events. Nil means discard.
	Logger *slog.Logger
}

// Lifecycle is told of connections and subscriptions as they begin and
// end, in order; its methods must not block. *events.Recorder implements
// it.
type Lifecycle interface {
	NewConn() uint64
	Connected(c events.Conn)
	Disconnected(c events.Conn, reason string)
	Subscribed(c events.Conn, channel string)
	Unsubscribed(c events.Conn, channel, reason string)
}

// Server serves the transports: GET /sse, GET /ws, and the routes of any
// other transport. Run sends heartbeats and, when its context ends, drains
// every connection so that clients reconnect elsewhere.
type Server struct {
	cfg  Config
	reg  *Registry
	hub  *hub.Hub
	auth *auth.Auth
	pub  *publish.Publisher
	app  publish.Appender
	life Lifecycle
	log  *slog.Logger
	mux  *http.ServeMux
	// routes are the patterns of the transports' routes, for whoever
	// mounts them.
	routes []string

	stats      counters
	presenceQ  chan presenceEvent
	expiries   expiries
	perIP      *limit.Conns
	connRate   *limit.Keyed // makes each connection's own limiter
	held       atomic.Int64 // connection slots taken: admitted and not yet released
	refusedLog *ratelog.Limiter
	// poll writes backed-up sockets while Run runs (nil otherwise: each
	// then gets a writer goroutine).
	poll atomic.Pointer[wire.Poller]
	// watch waits for idle connections' reads while Run runs (nil
	// otherwise: each then waits in a goroutine of its own).
	watch atomic.Pointer[wire.Watcher]
	// noWatcher makes Run start none, as where there is no epoll: tests
	// of that path set it.
	noWatcher bool
}

// New returns a server of the transports for parts, tuned by cfg.
func New(parts Parts, cfg Config) (*Server, error) {
	var errs []error
	if parts.Registry == nil || parts.Hub == nil || parts.Auth == nil || parts.Publisher == nil {
		errs = append(errs, errors.New("transport: a registry, a hub, an auth and a publisher are required"))
	}
	if len(cfg.PresenceChannels) > 0 && parts.Appender == nil {
		errs = append(errs, errors.New("transport: presence channels need an appender"))
	}
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg.withDefaults(), reg: parts.Registry, hub: parts.Hub, auth: parts.Auth,
		pub: parts.Publisher, app: parts.Appender, life: parts.Lifecycle, log: parts.Logger,
		presenceQ: make(chan presenceEvent, presenceQueue), refusedLog: ratelog.New(10 * time.Second),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.perIP = limit.NewConns(s.cfg.MaxConnectionsPerIP)
	s.connRate = limit.NewKeyed(s.cfg.PublishRate, int(2*s.cfg.PublishRate))
	s.mux = http.NewServeMux()
	// A transport is a kind of connection and a route.
	s.route("GET /sse", "sse", "sse", s.sseHandler)
	s.route("GET /ws", "ws", "websocket", s.wsHandler)
	s.route("GET /poll", "poll", "poll", s.pollHandler)
	return s, nil
}

// route serves pattern with the handler that handler makes for the
// connections of the transport named name (labelled label in the
// metrics).
func (s *Server) route(pattern, name, label string, handler func(*kind) http.HandlerFunc) {
	s.mux.HandleFunc(pattern, handler(s.reg.kind(name, label)))
	s.routes = append(s.routes, pattern)
}

// HijackedPaths returns the paths of the routes whose connections the
// transports take over from net/http: a front door (internal/front) may
// serve their first request itself.
func (s *Server) HijackedPaths() []string { return []string{"/sse", "/ws"} }

// Handler returns the transports' routes.
func (s *Server) Handler() http.Handler { return s.mux }

// Routes returns the patterns Handler serves (net/http.ServeMux
// patterns), for mounting them beside other routes.
func (s *Server) Routes() []string { return s.routes }

// heartbeatSlots spreads the heartbeats over that many ticks per interval,
// so that thousands of connections are not woken in the same instant.
const heartbeatSlots = 32

// Run sends heartbeats until ctx ends, then drains every connection over
// the drain timeout, and returns once every connection goroutine has
// exited.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Heartbeat / heartbeatSlots)
	defer t.Stop()
	if p, err := wire.NewPoller(s.cfg.WriteTimeout); err != nil {
		s.log.Warn("no epoll: each backed-up connection gets a writer goroutine", "err", err)
	} else {
		s.poll.Store(p)
		defer p.Stop() // after every connection has ended: a drain writes through it
	}
	if s.noWatcher {
		// each idle connection waits in a goroutine
	} else if w, err := wire.NewWatcher(); err != nil {
		s.log.Warn("no epoll: each idle connection waits for its client in a goroutine", "err", err)
	} else {
		s.watch.Store(w)
		defer w.Stop()
	}
	var presence sync.WaitGroup
	stopPresence := make(chan struct{})
	presence.Go(func() { s.publishPresence(stopPresence) })
	for slot := 0; ; slot = (slot + 1) % heartbeatSlots {
		select {
		case <-ctx.Done():
			s.reg.drain(s.cfg.DrainTimeout)
			s.reg.wait()
			close(stopPresence)
			presence.Wait()
			return nil
		case <-t.C:
			for _, c := range s.reg.inSlot(slot) {
				c.a.heartbeat()
			}
		}
	}
}

// DrainTimeout is how long a drain spreads the ends of the connections over.
func (s *Server) DrainTimeout() time.Duration { return s.cfg.DrainTimeout }
