package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/pushcluster/pushcluster/internal/backoff"
	"github.com/pushcluster/pushcluster/internal/ratelog"
)

// Defaults for Config.
const (
	DefaultPort           = 7946
	DefaultUpdateInterval = 2 * time.Second
	DefaultQueryTimeout   = 2 * time.Second
	// Label keeps other memberlist clusters' packets out: memberlist drops
	// packets whose label does not match.
	Label = "pushcluster"

	deadNodeReclaim = 10 * time.Second
)

var (
	// ErrNotFound is returned when no member holds the client asked for.
	ErrNotFound = errors.New("cluster: no member holds the client")
	// ErrClosed is returned by questions asked after Shutdown.
	ErrClosed = errors.New("cluster: shut down")
)

// Config configures a Cluster.
type Config struct {
	// Name is this member's name, unique in the cluster. Required.
	Name string
	// Bind is the gossip address, host:port, for both TCP and UDP. Empty
	// means no cluster: the node runs alone.
	Bind string
	// Advertise is the address peers use, host:port. Empty means the bind
	// address (or, when it is unspecified, memberlist's choice of a private
	// interface address).
	Advertise string
	// Join lists peers to join: host:port, or a DNS name that resolves to
	// every peer (a Kubernetes headless service, a compose service), with
	// DefaultPort when no port is given. While the member has no peers it
	// resolves and joins them again.
	Join []string
	// Key, when set, encrypts and authenticates gossip (AES, 16, 24 or 32
	// bytes); members with another key cannot join.
	Key []byte
	// Insecure says the operator runs gossip without a Key on purpose, on a
	// network only members reach. The node refuses an unencrypted cluster
	// when it authenticates its clients unless this is set. False means
	// such a cluster is refused.
	Insecure bool
	// AuthRequired says this node authenticates its callers. It then acts
	// on cluster questions (presence, client lists, messages to one client,
	// disconnects) only from members that gossip that they do too: a
	// member that lets anyone in would otherwise relay anyone's question.
	// False means an open node, which answers every member.
	AuthRequired bool
	// HTTP is this node's HTTP address, gossiped to the others.
	HTTP string
	// Version is this node's version, gossiped to the others.
	Version string
	// Local answers questions about this node. Required.
	Local Local
	// UpdateInterval is how often the member gossips its load. A member not
	// heard from for three intervals is reported suspect.
	// Defaults to DefaultUpdateInterval.
	UpdateInterval time.Duration
	// QueryTimeout bounds a question asked of the members.
	// Defaults to DefaultQueryTimeout.
	QueryTimeout time.Duration
	// Profile picks memberlist's timers: "lan" (the default), "wan" for
	// members far apart, or "local" for members on one host (failures
	// detected within a few seconds).
	Profile string
	// Tune, when set, adjusts memberlist's configuration before it starts.
	Tune func(*memberlist.Config)
	// OnGone, when set, is told the name of each member memberlist finds
	// dead or gone, on a goroutine of its own.
	OnGone func(member string)
	// Logger receives membership events. Nil means discard.
	Logger *slog.Logger
}

// Validate reports every problem with cfg at once.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Name == "" {
		errs = append(errs, errors.New("cluster: no member name"))
	}
	if cfg.Local == nil {
		errs = append(errs, errors.New("cluster: no local node"))
	}
	if cfg.Bind != "" {
		if _, _, err := splitHostPort(cfg.Bind); err != nil {
			errs = append(errs, fmt.Errorf("cluster: bad bind address: %w", err))
		}
	}
	if cfg.Advertise != "" {
		if _, _, err := splitHostPort(cfg.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("cluster: bad advertise address: %w", err))
		}
	}
	if n := len(cfg.Key); n != 0 && n != 16 && n != 24 && n != 32 {
		errs = append(errs, fmt.Errorf("cluster: key is %d bytes, want 16, 24 or 32", n))
	}
	switch cfg.Profile {
	case "", "lan", "wan", "local":
	default:
		errs = append(errs, fmt.Errorf("cluster: unknown profile %q: want lan, wan or local", cfg.Profile))
	}
	if cfg.UpdateInterval < 0 || cfg.QueryTimeout < 0 {
		errs = append(errs, errors.New("cluster: durations must not be negative"))
	}
	return errors.Join(errs...)
}

func (cfg Config) withDefaults() Config {
	if cfg.UpdateInterval == 0 {
		cfg.UpdateInterval = DefaultUpdateInterval
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Cluster is this node's membership and its questions to the others.
// Create it with New, start it with Run; its methods are safe for
// concurrent use.
type Cluster struct {
	cfg     Config
	log     *slog.Logger
	started time.Time
	mlp     atomic.Pointer[memberlist.Memberlist] // nil when running alone
	// updateMu serializes UpdateNode (see Update).
	updateMu sync.Mutex

	seq          atomic.Uint64
	leaving      atomic.Bool
	joinFailures atomic.Uint64
	gossipAddr   atomic.Pointer[string]
	shut         atomic.Bool
	gossipLog    *gossipLog
	joinLog      *ratelog.Limiter

	view  view
	rpc   rpc
	where whereCache

	shutdownOnce sync.Once
}

// New returns a cluster member for cfg; it joins nothing until Run.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Cluster{cfg: cfg, log: cfg.Logger, started: time.Now(), joinLog: ratelog.New(time.Minute)}
	c.gossipLog = newGossipLog(cfg.Logger, &c.shut)
	c.view.init(cfg.Name, cfg.UpdateInterval)
	c.rpc.init(c)
	c.where.init()
	return c, nil
}

// Enabled reports whether the node gossips with others.
func (c *Cluster) Enabled() bool { return c.cfg.Bind != "" }

// GossipAddr returns the address peers reach this member on, once Run has
// started gossip; "" before, or when running alone.
func (c *Cluster) GossipAddr() string {
	if p := c.gossipAddr.Load(); p != nil {
		return *p
	}
	return ""
}

// Name returns this member's name.
func (c *Cluster) Name() string { return c.cfg.Name }

// Run starts gossip, joins the peers and keeps the member's load current
// until ctx ends; then it leaves the cluster and returns once every
// goroutine it started has exited.
func (c *Cluster) Run(ctx context.Context) error {
	if !c.Enabled() {
		<-ctx.Done()
		return nil
	}
	if err := c.start(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.rpc.serve(ctx)
	}()
	go func() {
		defer wg.Done()
		c.keepJoined(ctx)
	}()
	c.gossipLoad(ctx)
	wg.Wait()
	c.leave()
	return nil
}

func (c *Cluster) start() error {
	mc, err := c.memberlistConfig()
	if err != nil {
		return err
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("cluster: failed to start gossip on %s: %w", c.cfg.Bind, err)
	}
	// Read once, before anything updates it: memberlist hands out its own
	// node unguarded.
	addr := ml.LocalNode().Address()
	c.gossipAddr.Store(&addr)
	c.mlp.Store(ml)
	c.log.Info("cluster gossip started", "name", c.cfg.Name, "bind", c.cfg.Bind,
		"advertise", addr, "encrypted", len(c.cfg.Key) > 0)
	return nil
}

func (c *Cluster) memberlistConfig() (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	switch c.cfg.Profile {
	case "wan":
		mc = memberlist.DefaultWANConfig()
	case "local":
		mc = memberlist.DefaultLocalConfig()
	}
	mc.Name = c.cfg.Name
	// A member restarted under its name on a new address (a new container
	// IP) may take the name over once the old one is known dead.
	mc.DeadNodeReclaimTime = deadNodeReclaim
	host, port, _ := splitHostPort(c.cfg.Bind)
	mc.BindAddr, mc.BindPort = host, port
	if c.cfg.Advertise != "" {
		ah, ap, _ := splitHostPort(c.cfg.Advertise)
		ips, err := net.LookupIP(ah)
		if err != nil || len(ips) == 0 {
			return nil, fmt.Errorf("cluster: cannot resolve advertise address %q: %v", ah, err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ips[0].String(), ap
	}
	mc.Label = Label
	// Compression is LZW: on a presence answer of 10,000 clients it took a
	// fifth of the CPU of the member asked, and more of those answering,
	// to save bytes on loopback or a LAN. Members still read compressed
	// messages from members that send them.
	mc.EnableCompression = false
	if len(c.cfg.Key) > 0 {
		mc.SecretKey = c.cfg.Key
	}
	mc.Delegate = (*delegate)(c)
	mc.Events = (*events)(c)
	mc.Logger = c.gossipLog.logger()
	mc.LogOutput = nil
	if c.cfg.Tune != nil {
		c.cfg.Tune(mc)
	}
	return mc, nil
}

// keepJoined joins the configured peers, resolving their names again,
// while this member has none.
func (c *Cluster) keepJoined(ctx context.Context) {
	if len(c.cfg.Join) == 0 {
		return
	}
	alone := backoff.New(200*time.Millisecond, 5*time.Second)
	for {
		wait := 2 * time.Second // with peers: only to notice losing them all
		if c.mlp.Load().NumMembers() <= 1 {
			n, err := c.mlp.Load().Join(joinAddrs(c.cfg.Join))
			switch {
			case err != nil && n == 0:
				c.joinFailures.Add(1)
				if times, ok := c.joinLog.Allow(); ok {
					c.log.Warn("failed to join the cluster; retrying", "peers", c.cfg.Join, "times", times, "err", err)
				}
			case n > 0:
				c.log.Info("joined cluster", "contacted", n, "members", c.mlp.Load().NumMembers())
			}
			wait = alone.Next()
		} else {
			alone.Reset()
		}
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// gossipLoad gossips the member's load every update interval until ctx ends.
func (c *Cluster) gossipLoad(ctx context.Context) {
	t := time.NewTicker(c.cfg.UpdateInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Update()
		}
	}
}

// Update gossips the member's current metadata now (a change of draining,
// say) instead of at the next interval.
func (c *Cluster) Update() {
	if c.mlp.Load() == nil {
		return
	}
	// memberlist's UpdateNode reads and writes this member's state without
	// a lock of its own: the interval's update and a drain's must not meet.
	c.updateMu.Lock()
	defer c.updateMu.Unlock()
	if err := c.mlp.Load().UpdateNode(c.cfg.QueryTimeout); err != nil {
		c.log.Debug("failed to gossip an update", "err", err)
	}
}

// leave tells the others that this member is going, waits for that to
// spread, and stops gossip.
func (c *Cluster) leave() {
	if c.shut.Load() { // memberlist panics on a leave after its shutdown
		return
	}
	c.leaving.Store(true)
	c.Update()
	if err := c.mlp.Load().Leave(c.cfg.QueryTimeout); err != nil {
		c.log.Warn("failed to leave the cluster cleanly", "err", err)
	}
	c.Shutdown()
	c.log.Info("left the cluster", "name", c.cfg.Name)
}

// Shutdown stops gossip at once, without leaving: peers see this member
// fail. It is safe to call more than once.
func (c *Cluster) Shutdown() {
	c.shutdownOnce.Do(func() {
		c.shut.Store(true)
		if c.mlp.Load() != nil {
			c.mlp.Load().Shutdown()
		}
		c.rpc.close()
	})
}

// localMeta is this member's metadata now.
func (c *Cluster) localMeta() meta {
	l := c.cfg.Local.Load()
	return meta{
		Format: metaVersion, HTTP: c.cfg.HTTP, Version: c.cfg.Version,
		Conns: l.Connections, SSE: l.Connections["sse"], WS: l.Connections["ws"], Subs: l.Subscriptions,
		Draining: c.cfg.Local.Draining(), Leaving: c.leaving.Load(),
		Started: c.started.UnixMilli(), Seq: c.seq.Add(1),
		Every: c.cfg.UpdateInterval.Milliseconds(), Auth: c.cfg.AuthRequired,
	}
}

// Stats are the member's counters.
type Stats struct {
	// GossipProblems counts memberlist's errors and warnings: packets it
	// refused (junk, another key or label) and connections that failed.
	GossipProblems uint64
	// JoinFailures counts attempts to join the configured peers that
	// reached none of them.
	JoinFailures uint64
	// Refused counts questions from members this one did not act on, as
	// they let anyone in and it does not.
	Refused uint64
}

// Stats returns the member's counters.
func (c *Cluster) Stats() Stats {
	return Stats{GossipProblems: c.gossipLog.problems.Load(), JoinFailures: c.joinFailures.Load(), Refused: c.rpc.refused.Load()}
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, port, nil
}

// joinAddrs adds the default port to peers given without one.
func joinAddrs(peers []string) []string {
	out := make([]string, 0, len(peers))
	for _, p := range peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			p = net.JoinHostPort(p, strconv.Itoa(DefaultPort))
		}
		out = append(out, p)
	}
	return out
}
