package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pushcluster/pushcluster/internal/front"
	"github.com/pushcluster/pushcluster/pkg/api"
	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/devstore"
	"github.com/pushcluster/pushcluster/pkg/events"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/limit"
	"github.com/pushcluster/pushcluster/pkg/metrics"
	"github.com/pushcluster/pushcluster/pkg/publish"
	"github.com/pushcluster/pushcluster/pkg/store"
	"github.com/pushcluster/pushcluster/pkg/transport"
)

// Defaults for Config.
const (
	DefaultListen          = ":6788"
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultIdleTimeout closes a keep-alive connection idle for a minute,
	// longer than browsers and most balancers keep one.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultReadTimeout bounds reading one request, body included; a
	// publish is at most a few hundred KiB.
	DefaultReadTimeout = 30 * time.Second
	// DefaultReadHeaderTimeout bounds a request's header, and so a
	// WebSocket or SSE handshake: a client that sends it a byte at a time
	// (slowloris) is cut off.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultMaxHeaderBytes fits a cookie or two and a token with room to
	// spare, far under net/http's 1 MiB.
	DefaultMaxHeaderBytes = 32 << 10
)

// Config configures a Node. Zero values take the defaults of the parts.
type Config struct {
	// Listen is the HTTP address. Defaults to DefaultListen (":6788").
	Listen string
	// Listener, when set, is used instead of Listen (tests pass 127.0.0.1:0).
	Listener net.Listener
	// RedisURL is the Redis to use (redis://host:port/db, rediss:// for
	// TLS). Empty, with no cluster or Sentinels in Redis, means an
	// embedded development store on a free loopback port.
	RedisURL string
	// Redis names a Redis Cluster or a Sentinel group instead, and the
	// credentials and TLS of whichever is used.
	Redis RedisConfig
	// Prefix is the stream key prefix. Defaults to store.DefaultPrefix.
	Prefix string
	// Name names the node to clients and in the cluster. Defaults to the host name.
	Name string
	// MaxLen bounds streams the node publishes to. Zero means
	// store.DefaultMaxLen; negative means no trimming.
	MaxLen int64
	// MaxAge also trims, on the node's publishes, entries older than this.
	// Zero means no age bound.
	MaxAge time.Duration
	// ChannelTTL lets a channel's stream expire this long after the node's
	// last publish to it. Zero means store.DefaultChannelTTL; negative
	// means never.
	ChannelTTL time.Duration
	// IdempotencyWindow is how long a publish's idempotency key is
	// remembered. Zero means store.DefaultIdempotencyWindow.
	IdempotencyWindow time.Duration
	// Events configures the lifecycle events stream; its Client, Prefix,
	// Node, OnLost and Logger are the node's. An empty Stream means none.
	Events events.Config
	// Webhooks sends the lifecycle events to a URL; they need Events. An
	// empty URL means none.
	Webhooks events.WebhookConfig
	// Transport tunes the transports. Its MaxConnections, zero, means here
	// what the open-file limit allows once Redis, the node and the spare
	// connections have their descriptors.
	Transport transport.Config
	// KeyPublishRate bounds HTTP publishes per second per API key, user or,
	// on an open node, address. Zero means api.DefaultKeyPublishRate;
	// negative, no bound.
	KeyPublishRate float64
	// FanoutWorkers is how many goroutines write a large channel's messages.
	// Zero means GOMAXPROCS.
	FanoutWorkers int
	// ReplayCacheBytes bounds the entry data kept of what was just fanned
	// out, so that clients a burst cuts off resume from it (hub.Config's
	// RecentBytes): zero means hub.DefaultRecentBytes, negative none.
	ReplayCacheBytes int64
	// ProbeInterval and PollInterval tune the doorbell; zero means defaults.
	ProbeInterval time.Duration
	PollInterval  time.Duration
	// SpareConnections is how many connections the listener accepts beyond
	// MaxConnections, so health checks, metrics, publishes and history are
	// served while every stream slot is taken; beyond them a connection is
	// answered 503 at once. Defaults to DefaultSpareConnections.
	SpareConnections int
	// DebugListen, when set, serves net/http/pprof on this address (keep it
	// private: profiles reveal internals). Empty means off.
	DebugListen string
	// IdleTimeout closes a keep-alive connection that has carried no request
	// for this long. SSE and WebSocket streams are not idle connections:
	// no timeout of the HTTP server applies to them once they are open.
	// Defaults to DefaultIdleTimeout.
	IdleTimeout time.Duration
	// ReadTimeout bounds reading one request, body included.
	// Defaults to DefaultReadTimeout.
	ReadTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's header. Defaults to
	// DefaultReadHeaderTimeout, or ReadTimeout when that is shorter.
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds a request's header. Defaults to
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// Auth configures authentication; Redis, Prefix and Logger are filled
	// in by the node. Nothing configured leaves the node open, which it
	// says loudly.
	Auth auth.Config
	// ShutdownTimeout bounds the HTTP server's shutdown once connections
	// are drained. Defaults to DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Version is this build's version, gossiped and shown by /api/cluster.
	Version string
	// Cluster configures membership; its Name, Local, HTTP and Version
	// are filled in by the node. An empty Bind runs the node alone.
	Cluster cluster.Config
	// Rebalance configures load shedding after a scale-out.
	Rebalance RebalanceConfig
	// IsolationTimeout is how long a node in a cluster may reach neither
	// Redis nor any member before it ends its connections (see
	// watchIsolation). Zero means DefaultIsolationTimeout; negative, never.
	IsolationTimeout time.Duration
	// Logger receives the node's logs. Nil means discard.
	Logger *slog.Logger
}

// Node is a running push node's parts.
type Node struct {
	cfg       Config
	log       *slog.Logger
	dev       *devstore.Store
	redis     *redisClient
	store     *store.Store
	events    *events.Recorder
	webhooks  *events.Webhooks
	bell      *store.Doorbell
	pub       *store.Publisher
	hub       *hub.Hub
	reg       *transport.Registry
	cluster   *cluster.Cluster
	publisher *publish.Publisher
	server    *transport.Server
	api       *api.Server
	metrics   *metrics.Metrics
	auth      *auth.Auth
	ln        *limitListener
	streams   int // connections the transports hold
	conns     int // connections the listener accepts
}

// New connects the node's parts; Run starts them.
func New(cfg Config) (*Node, error) {
	n := &Node{cfg: cfg, log: cfg.Logger}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.cfg.Name == "" {
		n.cfg.Name, _ = os.Hostname()
	}
	if n.cfg.ShutdownTimeout == 0 {
		n.cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if n.cfg.IdleTimeout == 0 {
		n.cfg.IdleTimeout = DefaultIdleTimeout
	}
	if n.cfg.ReadTimeout == 0 {
		n.cfg.ReadTimeout = DefaultReadTimeout
	}
	if n.cfg.ReadHeaderTimeout == 0 {
		n.cfg.ReadHeaderTimeout = min(DefaultReadHeaderTimeout, n.cfg.ReadTimeout)
	}
	if n.cfg.MaxHeaderBytes == 0 {
		n.cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if n.cfg.SpareConnections == 0 {
		n.cfg.SpareConnections = DefaultSpareConnections
	}
	if n.cfg.Transport.MaxConnections < 0 || n.cfg.SpareConnections < 0 {
		return nil, errors.New("node: connection limits must not be negative")
	}
	if err := n.start(); err != nil {
		n.Close() // n, not the nil the caller gets: what was opened is closed
		return nil, err
	}
	return n, nil
}

// start opens Redis, builds the parts, listens and sets up membership.
func (n *Node) start() error {
	if err := n.openRedis(); err != nil {
		return err
	}
	if err := n.build(); err != nil {
		return err
	}
	if err := n.listen(); err != nil {
		return err
	}
	if err := n.join(); err != nil {
		return err
	}
	return n.serve()
}

// ErrInsecureCluster refuses gossip without a key on a node that
// authenticates its clients: anyone who reached the gossip port would join
// as a member, list every client and disconnect them.
var ErrInsecureCluster = errors.New("node: authentication is on but gossip is not encrypted: anyone who reaches -cluster-bind can join as a member, list the clients and disconnect them; " +
	"set -cluster-key or -cluster-key-file (head -c32 /dev/urandom | base64), the same on every node, or -cluster-insecure on a network only the nodes reach")

// join sets up membership; it starts gossiping in Run.
func (n *Node) join() (err error) {
	cc := n.cfg.Cluster
	cc.Name, cc.Local, cc.Version, cc.Logger = n.cfg.Name, n.reg, n.cfg.Version, n.log
	cc.HTTP = advertisedHTTP(n.ln.Addr(), cc)
	cc.AuthRequired = n.auth.Enabled()
	if n.events != nil {
		// A member memberlist finds dead is reported lost as soon as its
		// heartbeat in Redis has stopped, not only after LostAfter.
		cc.OnGone = func(member string) { n.events.NodeGone(context.Background(), member) }
	}
	if cc.Bind != "" && len(cc.Key) == 0 && cc.AuthRequired {
		if !cc.Insecure {
			return ErrInsecureCluster
		}
		n.log.Warn("gossip is not encrypted (-cluster-insecure): any process that reaches -cluster-bind can join as a member", "bind", cc.Bind)
	}
	n.cluster, err = cluster.New(cc)
	return err
}

func (n *Node) openRedis() error {
	url := n.cfg.RedisURL
	mode := n.cfg.redisMode()
	if mode == "embedded" {
		dev, err := devstore.Start()
		if err != nil {
			return err
		}
		n.dev, url = dev, dev.URL()
		n.log.Info("embedded development store listening", "addr", dev.Addr(),
			"try", fmt.Sprintf("redis-cli %s XADD %sdemo '*' data hello", redisCLIArgs(dev.Addr(), 0, false), n.prefix()))
	}
	rc, err := newRedisClient(&n.cfg, url)
	if err != nil {
		return err
	}
	n.redis = rc
	if n.cfg.Redis.TLSInsecure {
		n.log.Warn("Redis TLS certificates are not verified (-redis-tls-insecure): anyone on the path can pose as Redis")
	}
	n.log.Info("redis", "mode", mode, "server", rc.server)
	return nil
}

// redisCLIArgs returns the redis-cli flags that reach the Redis at addr
// and db, leaving out the defaults (localhost, 6379, 0).
func redisCLIArgs(addr string, db int, tls bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	var args []string
	if host != "" && host != "localhost" && host != "127.0.0.1" {
		args = append(args, "-h", host)
	}
	if port != "6379" {
		args = append(args, "-p", port)
	}
	if db != 0 {
		args = append(args, "-n", strconv.Itoa(db))
	}
	if tls {
		args = append(args, "--tls")
	}
	return strings.Join(args, " ")
}

func (n *Node) prefix() string {
	if n.cfg.Prefix == "" {
		return store.DefaultPrefix
	}
	return n.cfg.Prefix
}

// build makes the node's parts, each given the parts it works with, in
// the one direction the arrows go: store, doorbell, hub, auth, registry.
// The cluster, the publisher, the transports and the API follow once the
// node listens (join).
func (n *Node) build() (err error) {
	if n.store, err = store.New(store.Config{
		Client: n.redis.rdb, Prefix: n.cfg.Prefix,
		MaxLen: n.cfg.MaxLen, MaxAge: n.cfg.MaxAge, ChannelTTL: n.cfg.ChannelTTL, IdempotencyWindow: n.cfg.IdempotencyWindow,
	}); err != nil {
		return err
	}
	n.metrics = metrics.New()
	if n.bell, err = store.NewDoorbell(store.DoorbellConfig{
		Store: n.store, DB: n.redis.db, Node: n.cfg.Name, Server: n.redis.server,
		ProbeInterval: n.cfg.ProbeInterval, PollInterval: n.cfg.PollInterval,
		Polled: n.dev != nil, Logger: n.log,
	}); err != nil {
		return err
	}
	if n.hub, err = hub.New(hub.Config{
		Store: n.store, Bell: n.bell,
		FanoutWorkers: n.cfg.FanoutWorkers,
		RecentBytes:   n.cfg.ReplayCacheBytes,
		ReadLatency:   n.metrics.ObserveRead,
		Logger:        n.log,
	}); err != nil {
		return err
	}
	if n.pub, err = store.NewPublisher(store.PublisherConfig{Store: n.store}); err != nil {
		return err
	}
	if err := n.openAuth(); err != nil {
		return err
	}
	n.reg = transport.NewRegistry(n.cfg.Name, n.hub.Subscriptions)
	return n.openEvents()
}

// openEvents sets up the lifecycle events, when a stream is configured.
func (n *Node) openEvents() (err error) {
	ec := n.cfg.Events
	if ec.Stream == "" {
		if n.cfg.Webhooks.URL != "" {
			return errors.New("node: webhooks send the lifecycle events: set -events-stream too")
		}
		return nil
	}
	ec.Client, ec.Prefix, ec.Node, ec.Logger = n.redis.rdb, n.store.Prefix(), n.cfg.Name, n.log
	// Reported lost while cut off from Redis: its clients were reported
	// disconnected, so they are sent away, to come back as new connections.
	ec.OnLost = func() { n.reg.Shed(n.reg.Connections()) }
	if n.events, err = events.New(ec); err != nil || n.cfg.Webhooks.URL == "" {
		return err
	}
	n.webhooks, err = n.events.NewWebhooks(n.cfg.Webhooks)
	return err
}

// serve makes the parts that answer requests: the publisher (which needs
// the cluster for messages to one client), the transports and the API.
func (n *Node) serve() (err error) {
	if n.publisher, err = publish.New(publish.Config{
		Appender: n.pub, Cluster: n.cluster, MaxPayload: n.cfg.Transport.MaxPayload, Logger: n.log,
	}); err != nil {
		return err
	}
	tc := n.cfg.Transport
	if tc.MaxConnections == 0 {
		tc.MaxConnections = n.streams
	}
	parts := transport.Parts{
		Registry: n.reg, Hub: n.hub, Auth: n.auth, Publisher: n.publisher, Appender: n.pub, Logger: n.log,
	}
	if n.events != nil {
		parts.Lifecycle = n.events
	}
	if n.server, err = transport.New(parts, tc); err != nil {
		return err
	}
	if n.api, err = api.New(api.Parts{
		Store: n.store, Publisher: n.publisher, Auth: n.auth, Cluster: n.cluster,
		Delivery: n.hub, Draining: n.reg.Draining, Logger: n.log,
	}, api.Config{
		Node: n.cfg.Name, MaxPayload: tc.MaxPayload, KeyPublishRate: n.cfg.KeyPublishRate,
		TrustedProxies: tc.TrustedProxies, StoreCLI: n.redis.cli, Prefix: n.cfg.Prefix,
	}); err != nil {
		return err
	}
	src := metrics.Sources{
		Hub: n.hub.Stats, Transport: n.server.Stats, API: n.api.Stats, Auth: n.auth.Stats,
		Cluster: n.cluster.Stats, Listener: n.ln.Refused,
	}
	if n.events != nil {
		src.Events = n.events.Stats
	}
	if n.webhooks != nil {
		src.Webhooks = n.webhooks.Stats
	}
	n.metrics.Watch(src)
	return nil
}

// openAuth sets up authentication, its tickets in the node's Redis.
func (n *Node) openAuth() (err error) {
	ac := n.cfg.Auth
	ac.Redis, ac.Prefix, ac.Logger = n.redis.rdb, n.store.Prefix(), n.log
	proxies := n.cfg.Transport.TrustedProxies
	ac.Hooks.ClientAddr = func(r *http.Request) netip.Addr { return limit.ClientAddr(r, proxies) }
	if n.auth, err = auth.New(ac); err != nil {
		return err
	}
	if !n.auth.Enabled() {
		n.log.Warn("authentication is OFF: anyone who reaches this node may subscribe to, publish to and read the history of any channel, and use the admin APIs; set -jwt-secret, -jwt-public-key, -jwks-url, -api-key or -connect-hook (docs/SECURITY.md)")
	}
	return nil
}

// limits returns how many streams the node holds and how many
// connections its listener accepts, and logs them.
func (n *Node) limits() (streams, conns int) {
	fds := raiseFileLimit(n.log)
	pool := n.redis.conns
	streams, conns = connectionLimits(fds, n.cfg.Transport.MaxConnections, n.cfg.SpareConnections, pool)
	n.log.Info("connection limits", "streams", streams, "connections", conns, "fd_limit", fds)
	if fds > 0 && uint64(conns+2*pool+fdReserve) > fds {
		n.log.Warn("connection limits exceed what the open-file limit leaves; raise it (ulimit -n) or lower -max-connections",
			"connections", conns, "fd_limit", fds)
	}
	return streams, conns
}

// handler serves the transport's routes and /metrics on one port.
func (n *Node) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", n.metrics.Handler())
	for _, pattern := range n.server.Routes() {
		mux.Handle(pattern, n.server.Handler())
	}
	mux.Handle("/", n.api.Handler())
	return api.CORS(mux, n.cfg.Transport.AllowedOrigins)
}

func (n *Node) listen() error {
	ln := n.cfg.Listener
	if ln == nil {
		addr := n.cfg.Listen
		if addr == "" {
			addr = DefaultListen
		}
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("node: failed to listen: %w", err)
		}
	}
	n.streams, n.conns = n.limits()
	n.ln = newLimitListener(ln, n.conns, n.log)
	return nil
}

// Addr returns the address the node serves HTTP on.
func (n *Node) Addr() net.Addr { return n.ln.Addr() }

// DevStoreAddr returns the embedded development store's address, or "" when
// the node uses a real Redis.
func (n *Node) DevStoreAddr() string {
	if n.dev == nil {
		return ""
	}
	return n.dev.Addr()
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Server returns the node's transports, for their counters.
func (n *Node) Server() *transport.Server { return n.server }

// Registry returns the node's connections.
func (n *Node) Registry() *transport.Registry { return n.reg }

// Hub returns the node's hub, for its counters.
func (n *Node) Hub() *hub.Hub { return n.hub }

// RefusedConnections returns how many connections the listener refused
// at its limit.
func (n *Node) RefusedConnections() uint64 { return n.ln.Refused() }

// Cluster returns the node's view of the cluster.
func (n *Node) Cluster() *cluster.Cluster { return n.cluster }

// Run serves until ctx ends, then drains like a lame duck: /readyz fails
// and the cluster hears that the node is draining at once, connections are
// ended in randomly spaced batches over the drain timeout (clients resume
// on other nodes), the node leaves the cluster, and Run returns once every
// goroutine it started has exited.
func (n *Node) Run(ctx context.Context) error {
	defer n.Close()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	hs := &http.Server{
		Handler:           n.handler(),
		ReadHeaderTimeout: n.cfg.ReadHeaderTimeout,
		ReadTimeout:       n.cfg.ReadTimeout,
		MaxHeaderBytes:    n.cfg.MaxHeaderBytes,
		IdleTimeout:       n.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}
	n.log.Info("node serving", "node", n.cfg.Name, "addr", n.ln.Addr().String(), "version", n.cfg.Version, "auth", n.auth.Mode())

	// The hub, publisher and cluster outlive the drain: clients being
	// drained still get their messages, and cluster questions their answers.
	backCtx, stopBack := context.WithCancel(context.Background())
	defer stopBack()
	clusterCtx, stopCluster := context.WithCancel(context.Background())
	defer stopCluster()
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	run(func() { n.bell.Run(backCtx, n.hub) })
	run(func() { n.hub.Run(backCtx) })
	run(func() { n.pub.Run(backCtx) })
	if n.events != nil {
		run(func() { n.events.Run(backCtx) })
	}
	if n.webhooks != nil {
		run(func() { n.webhooks.Run(backCtx) })
	}
	clusterErr := make(chan error, 1)
	run(func() { clusterErr <- n.cluster.Run(clusterCtx) })
	if n.cfg.DebugListen != "" {
		run(func() { n.serveDebug(ctx) })
	}
	// The transports drain when told, after the drain is announced and
	// its connections counted, not as soon as ctx ends.
	drainCtx, startDrain := context.WithCancel(context.Background())
	defer startDrain()
	drained := make(chan struct{})
	run(func() {
		defer close(drained)
		n.server.Run(drainCtx)
	})
	run(func() { n.rebalance(ctx) })
	run(func() { n.watchIsolation(ctx) })
	serveErr := make(chan error, 1)
	// Streams' and WebSockets' first requests are served without
	// net/http's per-connection buffers, which a hijack never returns.
	fl := front.Listen(n.ln, hs, n.server.HijackedPaths()...)
	run(func() { serveErr <- hs.Serve(fl) })

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	case err = <-clusterErr:
	}
	n.reg.BeginDrain()
	n.cluster.Update()
	// Counted before the drain starts: its first batch may end at once.
	n.log.Info("node draining", "node", n.cfg.Name, "connections", n.reg.Connections(), "over", n.server.DrainTimeout())
	stop()
	startDrain()
	<-drained
	stopCluster()
	sctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
	defer cancel()
	hs.Shutdown(sctx)
	fl.Wait()
	stopBack()
	wg.Wait()
	n.ln.wait()
	n.log.Info("node stopped", "node", n.cfg.Name)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close releases the Redis connection and the embedded store. It is safe to
// call more than once.
func (n *Node) Close() {
	if n.auth != nil {
		n.auth.Close()
	}
	if n.redis != nil {
		n.redis.rdb.Close()
	}
	if n.dev != nil {
		n.dev.Close()
	}
	if n.ln != nil {
		n.ln.Close() // Run's server has closed it already, or it never ran
	}
}
