package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for DoorbellConfig.
const (
	DefaultProbeInterval = 2 * time.Second
	DefaultPollInterval  = 100 * time.Millisecond
	subscribeBatch       = 1000
	// probeTTL lets a probe stream expire once its node is gone for good.
	probeTTL = 10 * time.Minute
	// maxPollReads bounds the channel reads per second that polling asks
	// for: with many channels, polls space out rather than swamp Redis.
	maxPollReads = 20_000
)

// DoorbellConfig configures a Doorbell.
type DoorbellConfig struct {
	// Store is the store whose channels are watched. Required.
	Store *Store
	// DB is the Redis database number of the store's client, which names
	// its keyspace notification channels. Zero means database 0.
	DB int
	// Node names this node; it keys the node's probe streams.
	// Defaults to "node".
	Node string
	// Server names the Redis in readiness and logs when it is not a
	// cluster (whose shards are named by their primaries' addresses).
	// Defaults to the client's address.
	Server string
	// ProbeInterval is how often the doorbell proves its own path by adding
	// to its probe stream and waiting for the notification.
	// Defaults to DefaultProbeInterval.
	ProbeInterval time.Duration
	// PollInterval is how often RingAll is called while notifications are
	// not proven to work (an embedded store, CONFIG forbidden, a stall);
	// with many channels, no more often than 20,000 channel reads a second.
	// Defaults to DefaultPollInterval.
	PollInterval time.Duration
	// Polled says the store has no keyspace notifications, as the embedded
	// development store has none: it is polled from the start, with
	// nothing for an operator to change. False means notifications are
	// turned on, or the setting to change is reported.
	Polled bool
	// Logger receives the doorbell's state changes. Nil means discard.
	Logger *slog.Logger
}

// Validate reports every problem with cfg at once.
func (cfg DoorbellConfig) Validate() error {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("store: doorbell needs a store"))
	}
	if cfg.ProbeInterval < 0 || cfg.PollInterval < 0 {
		errs = append(errs, errors.New("store: doorbell intervals must not be negative"))
	}
	return errors.Join(errs...)
}

func (cfg DoorbellConfig) withDefaults() DoorbellConfig {
	if cfg.Node == "" {
		cfg.Node = "node"
	}
	if cfg.Server == "" {
		cfg.Server = "redis"
		if c, ok := cfg.Store.rdb.(*redis.Client); ok {
			cfg.Server = c.Options().Addr
		}
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Ringer is what a doorbell rings: the hub. Its methods are called from the
// doorbell's goroutines and must not block.
type Ringer interface {
	// Ring is called with a channel that has new entries: a notification
	// came.
	Ring(channel string)
	// Check is called with a channel that may have new entries: its
	// subscription was just confirmed, or its shard's connection lost, so
	// a notification may have been missed.
	Check(channel string)
	// RingAll is called when any watched channel may have new entries:
	// after a lost connection, a failed probe, or on every poll while the
	// doorbell is unproven.
	RingAll()
}

// Doorbell tells which watched channels may have moved. It subscribes to the
// keyspace notification of each watched stream, so Redis does work only for
// the stream that changed, and never re-registers keys as a blocking XREAD
// over every channel would.
//
// In Redis Cluster a notification is published only on the node where the
// command ran, the primary that owns the key, so the doorbell keeps one
// pub/sub connection per primary, subscribed to the keys that primary owns,
// and one probe key per primary (a hash tag picks a slot it owns). It
// reloads the slot map every probe interval and whenever a probe or a
// connection fails; after any change it moves subscriptions to their new
// owners and rings every channel, so readers re-read from their cursors.
//
// A wake-up may be lost (a dropped pub/sub connection, an output buffer
// limit, notifications switched off by a restart or a failover, a slot
// moving); that only delays: every (re)subscription rings its channel, and
// a periodic probe proves each shard's path. While a shard is unproven the
// doorbell polls its channels.
type Doorbell struct {
	cfg       DoorbellConfig
	rdb       redis.UniversalClient
	cluster   *redis.ClusterClient // nil when the store is not a cluster
	notifyPfx string               // "__keyspace@<db>__:"
	probePfx  string               // "<prefix>$probe:<node>"

	mu       sync.Mutex
	interest map[string]struct{} // every watched channel
	topo     *topology           // nil until loaded
	bells    []*shardBell        // by shard, as topo.addrs

	reload chan struct{}
	alive  atomic.Int64 // unix nanos of the last healthy loop turn
	ringer Ringer       // set by Run before anything rings
}

// NewDoorbell returns a doorbell for cfg; Run starts it.
func NewDoorbell(cfg DoorbellConfig) (*Doorbell, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := cfg.Store
	d := &Doorbell{
		cfg:       cfg,
		rdb:       s.rdb,
		probePfx:  s.prefix + "$probe:" + cfg.Node,
		notifyPfx: fmt.Sprintf("__keyspace@%d__:", cfg.DB),
		interest:  make(map[string]struct{}),
		reload:    make(chan struct{}, 1),
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		d.cluster, d.notifyPfx = cc, "__keyspace@0__:"
	}
	return d, nil
}

// Watch starts ringing for channel. It does not block.
func (d *Doorbell) Watch(channel string) { d.set(channel, true) }

// Unwatch stops ringing for channel. It does not block.
func (d *Doorbell) Unwatch(channel string) { d.set(channel, false) }

func (d *Doorbell) set(channel string, watch bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if watch {
		d.interest[channel] = struct{}{}
	} else {
		delete(d.interest, channel)
	}
	if d.topo == nil {
		return
	}
	if i := d.topo.shardOf(d.cfg.Store.Key(channel)); i >= 0 {
		d.bells[i].set(channel, watch)
	} else if !watch {
		for _, b := range d.bells {
			b.set(channel, false)
		}
	}
}

// Proven reports whether notifications are known to arrive on every shard:
// each shard's last probe came back in time. When false, the doorbell
// polls the shards that are not.
func (d *Doorbell) Proven() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.bells) == 0 {
		return false
	}
	for _, b := range d.bells {
		if !b.proven.Load() {
			return false
		}
	}
	return true
}

// Shards returns the wake-up path of every shard.
func (d *Doorbell) Shards() []ShardStatus {
	d.mu.Lock()
	bells := d.bells
	d.mu.Unlock()
	out := make([]ShardStatus, len(bells))
	for i, b := range bells {
		out[i] = b.status()
	}
	return out
}

// Alive reports whether the doorbell's loops have turned within the last
// two probe intervals.
func (d *Doorbell) Alive() bool {
	if time.Since(time.Unix(0, d.alive.Load())) >= 2*d.cfg.ProbeInterval+time.Second {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range d.bells {
		if !b.aliveNow() {
			return false
		}
	}
	return true
}

// Recheck asks for the cluster's slot map to be read again now, as after
// reads that failed: a primary may have failed over or a slot moved. It
// does not block, and does nothing for a Redis that is not a cluster.
func (d *Doorbell) Recheck() { d.reloadSoon() }

// reloadSoon asks for the slot map to be read again. It does not block.
func (d *Doorbell) reloadSoon() {
	select {
	case d.reload <- struct{}{}:
	default:
	}
}

// Run rings r until ctx ends, then returns once its goroutines have
// exited.
func (d *Doorbell) Run(ctx context.Context, r Ringer) error {
	d.ringer = r
	d.alive.Store(time.Now().UnixNano())
	defer d.stopBells()
	tick := time.NewTicker(d.cfg.ProbeInterval)
	defer tick.Stop()
	poll := time.NewTicker(d.cfg.PollInterval)
	defer poll.Stop()
	d.retopo(ctx)
	lastPoll := map[*shardBell]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			d.alive.Store(now.UnixNano())
			d.retopo(ctx)
		case <-d.reload:
			d.retopo(ctx)
		case now := <-poll.C:
			d.poll(now, lastPoll)
		}
	}
}

// poll rings the channels of every shard that is not proven, each no more
// often than its pollEvery.
func (d *Doorbell) poll(now time.Time, last map[*shardBell]time.Time) {
	d.mu.Lock()
	bells := d.bells
	d.mu.Unlock()
	for _, b := range bells {
		if !b.proven.Load() && now.Sub(last[b]) >= d.pollEvery(b.count()) {
			last[b] = now
			b.ringAll()
		}
	}
	if len(last) > 4*len(bells) {
		clear(last)
	}
}

// pollEvery is the time between polls of n channels: PollInterval,
// stretched so that polling reads at most maxPollReads channels a second.
func (d *Doorbell) pollEvery(n int) time.Duration {
	return max(d.cfg.PollInterval, time.Duration(n)*time.Second/maxPollReads)
}

// retopo reads the slot map and, when it changed, moves the watched
// channels to the shards that now own them.
func (d *Doorbell) retopo(ctx context.Context) {
	t, err := d.loadTopology(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.Warn("cannot read the cluster's slots; keeping the last known", "err", err)
		}
		return
	}
	d.mu.Lock()
	if t.equal(d.topo) {
		d.mu.Unlock()
		return
	}
	first := d.topo == nil
	bells, gone := d.rebell(ctx, t)
	want := make([]map[string]struct{}, len(bells))
	for i := range want {
		want[i] = map[string]struct{}{}
	}
	for ch := range d.interest {
		if i := t.shardOf(d.cfg.Store.Key(ch)); i >= 0 {
			want[i][ch] = struct{}{}
		}
	}
	for i, b := range bells {
		b.whole.Store(len(bells) == 1 && t.owner == nil)
		b.assign(want[i])
	}
	d.topo, d.bells = t, bells
	d.mu.Unlock()
	for _, b := range gone {
		b.stop()
	}
	if !first && d.cluster != nil {
		d.cfg.Logger.Info("cluster topology changed; re-reading every channel", "primaries", t.addrs)
		// go-redis reloads its own slot map only on MOVED, or when it is
		// 10 s old: a primary that died answers nothing, so tell it now.
		d.cluster.ReloadState(ctx)
		d.ringer.RingAll()
	}
	if d.cluster != nil {
		d.enableOnReplicas(ctx)
	}
}

// rebell returns a bell per shard of t, keeping those of the current
// topology whose primary and probe slot are unchanged, and the bells to stop.
func (d *Doorbell) rebell(ctx context.Context, t *topology) (bells, gone []*shardBell) {
	kept := map[string]*shardBell{}
	for _, b := range d.bells {
		kept[b.name] = b
	}
	for i, addr := range t.addrs {
		b := kept[addr]
		if b != nil && t.owns(i, Slot(b.probeKey)) {
			delete(kept, addr)
		} else {
			b = d.newBell(addr, t, i)
			b.start(ctx)
		}
		bells = append(bells, b)
	}
	for _, b := range kept {
		gone = append(gone, b)
	}
	return bells, gone
}

// newBell makes the bell of shard i of t, with a probe key on that shard.
func (d *Doorbell) newBell(addr string, t *topology, i int) *shardBell {
	if d.cluster == nil {
		return newShardBell(d, addr, d.rdb, nil, d.probePfx)
	}
	key := d.probePfx
	if tag, ok := tagIn(func(slot int) bool { return t.owns(i, slot) }); ok {
		key += ":{" + tag + "}"
	}
	own := redis.NewClient(nodeOptions(d.cluster, addr))
	return newShardBell(d, addr, own, own, key)
}

func (d *Doorbell) loadTopology(ctx context.Context) (*topology, error) {
	if d.cluster == nil {
		return singleShard(d.cfg.Server), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return loadTopology(ctx, d.cluster)
}

// enableOnReplicas turns notifications on on every replica too, so that a
// replica promoted by a failover notifies at once. It is best effort: the
// probe of the new primary's shard checks again.
func (d *Doorbell) enableOnReplicas(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	d.cluster.ForEachSlave(ctx, func(ctx context.Context, c *redis.Client) error {
		enableNotifications(ctx, c)
		return nil
	})
}

func (d *Doorbell) stopBells() {
	d.mu.Lock()
	bells := d.bells
	d.bells, d.topo = nil, nil
	d.mu.Unlock()
	for _, b := range bells {
		b.stop()
	}
}
