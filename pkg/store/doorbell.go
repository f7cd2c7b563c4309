package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
	// Node names this node; it keys the node's probe stream.
	// Defaults to "node".
	Node string
	// Ring is called with a channel that may have new entries. Required.
	// It is called from the doorbell's goroutines and must not block.
	Ring func(channel string)
	// RingAll is called when any watched channel may have new entries: after
	// a lost connection, a failed probe, or on every poll while the doorbell
	// is unproven. Required; must not block.
	RingAll func()
	// ProbeInterval is how often the doorbell proves its own path by adding
	// to its probe stream and waiting for the notification.
	// Defaults to DefaultProbeInterval.
	ProbeInterval time.Duration
	// PollInterval is how often RingAll is called while notifications are
	// not proven to work (an embedded store, CONFIG forbidden, a stall);
	// with many channels, no more often than 20,000 channel reads a second.
	// Defaults to DefaultPollInterval.
	PollInterval time.Duration
	// Logger receives the doorbell's state changes. Nil means discard.
	Logger *slog.Logger
}

// Validate reports every problem with cfg at once.
func (cfg DoorbellConfig) Validate() error {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("store: doorbell needs a store"))
	}
	if cfg.Ring == nil || cfg.RingAll == nil {
		errs = append(errs, errors.New("store: doorbell needs Ring and RingAll"))
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

// Doorbell tells which watched channels may have moved. It subscribes to the
// keyspace notification of each watched stream, so Redis does work only for
// the stream that changed, and never re-registers keys as a blocking XREAD
// over every channel would.
//
// A wake-up may be lost (a dropped pub/sub connection, an output buffer
// limit, notifications switched off by a restart); that only delays: every
// (re)subscription rings its channel, and a periodic probe proves the path.
// While it is unproven the doorbell polls, ringing every channel.
type Doorbell struct {
	cfg       DoorbellConfig
	rdb       redis.UniversalClient
	probeKey  string
	notifyPfx string // "__keyspace@<db>__:<prefix>"

	mu      sync.Mutex
	pending map[string]bool // channel → watch (true) or unwatch (false)
	watched map[string]struct{}
	changed chan struct{}
	reprobe chan struct{} // the probe's subscription was (re)confirmed

	proven    atomic.Bool
	probeSeen atomic.Int64 // unix nanos of the last probe notification
	alive     atomic.Int64 // unix nanos of the last healthy loop turn
}

// NewDoorbell returns a doorbell for cfg; Run starts it.
func NewDoorbell(cfg DoorbellConfig) (*Doorbell, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := cfg.Store
	return &Doorbell{
		cfg:       cfg,
		rdb:       s.rdb,
		probeKey:  s.prefix + "$probe:" + cfg.Node,
		notifyPfx: fmt.Sprintf("__keyspace@%d__:", cfg.DB),
		pending:   make(map[string]bool),
		watched:   make(map[string]struct{}),
		changed:   make(chan struct{}, 1),
		reprobe:   make(chan struct{}, 1),
	}, nil
}

// Watch starts ringing for channel. It does not block.
func (d *Doorbell) Watch(channel string) { d.set(channel, true) }

// Unwatch stops ringing for channel. It does not block.
func (d *Doorbell) Unwatch(channel string) { d.set(channel, false) }

func (d *Doorbell) set(channel string, watch bool) {
	d.mu.Lock()
	d.pending[channel] = watch
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// Proven reports whether notifications are known to arrive: the last probe
// came back in time. When false, the doorbell is polling.
func (d *Doorbell) Proven() bool { return d.proven.Load() }

// Alive reports whether the doorbell's loop has turned within the last
// two probe intervals.
func (d *Doorbell) Alive() bool {
	return time.Since(time.Unix(0, d.alive.Load())) < 2*d.cfg.ProbeInterval+time.Second
}

// Run rings until ctx ends, then returns once its goroutines have exited.
func (d *Doorbell) Run(ctx context.Context) error {
	d.alive.Store(time.Now().UnixNano())
	d.enableNotifications(ctx)
	probe := time.NewTicker(d.cfg.ProbeInterval)
	defer probe.Stop()
	poll := time.NewTicker(d.cfg.PollInterval)
	defer poll.Stop()
	for ctx.Err() == nil {
		d.session(ctx, probe.C, poll.C)
	}
	return nil
}

// session runs one pub/sub connection until ctx ends or a probe fails.
func (d *Doorbell) session(ctx context.Context, probe, poll <-chan time.Time) {
	ps := d.subscribeAll(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.receive(ctx, ps)
	}()
	defer func() {
		ps.Close()
		wg.Wait()
		d.cfg.RingAll()
	}()
	sent := time.Now()
	d.sendProbe(ctx)
	var lastPoll time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.changed:
			d.apply(ctx, ps)
		case <-d.reprobe:
			// go-redis resubscribed after a dropped connection: a probe sent
			// in the gap proves nothing, so start its clock again.
			sent = time.Now()
			d.sendProbe(ctx)
		case now := <-poll:
			if !d.proven.Load() && now.Sub(lastPoll) >= d.pollEvery() {
				lastPoll = now
				d.cfg.RingAll()
			}
		case now := <-probe:
			d.alive.Store(now.UnixNano())
			if d.probeSeen.Load() < sent.UnixNano() && d.probeFailed(ctx) {
				return
			}
			sent = now
			d.sendProbe(ctx)
		}
	}
}

// probeFailed switches to polling and reports whether the pub/sub connection
// should be replaced: only when it had been proven, since a connection that
// never carried a notification is not the problem.
// pollEvery is the time between polls: PollInterval, stretched so that
// polling reads at most maxPollReads channels a second.
func (d *Doorbell) pollEvery() time.Duration {
	d.mu.Lock()
	n := len(d.watched)
	d.mu.Unlock()
	return max(d.cfg.PollInterval, time.Duration(n)*time.Second/maxPollReads)
}

func (d *Doorbell) probeFailed(ctx context.Context) (reconnect bool) {
	reconnect = d.proven.Swap(false)
	if reconnect {
		d.cfg.Logger.Warn("doorbell probe lost; polling and reconnecting")
	}
	d.enableNotifications(ctx)
	return reconnect
}

func (d *Doorbell) sendProbe(ctx context.Context) {
	err := d.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: d.probeKey, MaxLen: 1, Values: []any{"probe", time.Now().UnixNano()},
	}).Err()
	if err != nil {
		d.cfg.Logger.Debug("doorbell probe failed", "err", err)
	}
}

// subscribeAll opens a pub/sub connection on the probe and every watched channel.
func (d *Doorbell) subscribeAll(ctx context.Context) *redis.PubSub {
	ps := d.rdb.Subscribe(ctx, d.notifyPfx+d.probeKey)
	d.mu.Lock()
	for ch, watch := range d.pending {
		if watch {
			d.watched[ch] = struct{}{}
		} else {
			delete(d.watched, ch)
		}
	}
	clear(d.pending)
	names := make([]string, 0, len(d.watched))
	for ch := range d.watched {
		names = append(names, d.notifyPfx+d.cfg.Store.Key(ch))
	}
	d.mu.Unlock()
	d.command(ctx, ps.Subscribe, names)
	return ps
}

// apply sends the SUBSCRIBE and UNSUBSCRIBE commands for pending changes.
func (d *Doorbell) apply(ctx context.Context, ps *redis.PubSub) {
	var sub, unsub []string
	d.mu.Lock()
	for ch, watch := range d.pending {
		_, had := d.watched[ch]
		name := d.notifyPfx + d.cfg.Store.Key(ch)
		switch {
		case watch && !had:
			d.watched[ch] = struct{}{}
			sub = append(sub, name)
		case !watch && had:
			delete(d.watched, ch)
			unsub = append(unsub, name)
		}
	}
	clear(d.pending)
	d.mu.Unlock()
	d.command(ctx, ps.Subscribe, sub)
	d.command(ctx, ps.Unsubscribe, unsub)
}

// command sends names in batches. go-redis remembers the channels even when a
// write fails and subscribes them again on reconnect, so errors only delay.
func (d *Doorbell) command(ctx context.Context, fn func(context.Context, ...string) error, names []string) {
	for len(names) > 0 {
		n := min(len(names), subscribeBatch)
		if err := fn(ctx, names[:n]...); err != nil {
			d.cfg.Logger.Debug("doorbell subscription failed", "err", err)
		}
		names = names[n:]
	}
}

func (d *Doorbell) receive(ctx context.Context, ps *redis.PubSub) {
	backoff := 10 * time.Millisecond
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			d.cfg.RingAll()
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		d.handle(msg)
	}
}

func (d *Doorbell) handle(msg any) {
	switch m := msg.(type) {
	case *redis.Subscription:
		if m.Kind == "subscribe" {
			d.ring(m.Channel, false)
		}
	case *redis.Message:
		if m.Payload == "xadd" {
			d.ring(m.Channel, true)
		}
	}
}

// ring handles a notification, or the confirmation of a subscription, which
// rings too: entries added before it took effect must still be read.
func (d *Doorbell) ring(name string, notified bool) {
	key, ok := strings.CutPrefix(name, d.notifyPfx)
	if !ok {
		return
	}
	if key == d.probeKey {
		if !notified {
			select {
			case d.reprobe <- struct{}{}:
			default:
			}
			return
		}
		d.probeSeen.Store(time.Now().UnixNano())
		if !d.proven.Swap(true) {
			d.cfg.Logger.Info("doorbell proven: keyspace notifications arrive")
			// Entries added since the last poll, before notifications were
			// (re)enabled, rang nothing, and polling stops now: read them.
			d.cfg.RingAll()
		}
		return
	}
	if ch, ok := strings.CutPrefix(key, d.cfg.Store.prefix); ok {
		d.cfg.Ring(ch)
	}
}

// enableNotifications turns on keyspace notifications for stream commands
// (flags K and t), keeping whatever flags are already set. Failure is not
// fatal: managed Redis may forbid CONFIG yet have them on, and the probe
// tells; without them the doorbell polls.
func (d *Doorbell) enableNotifications(ctx context.Context) {
	cur, err := d.rdb.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		d.cfg.Logger.Debug("cannot read notify-keyspace-events", "err", err)
		return
	}
	flags := cur["notify-keyspace-events"]
	want := flags
	if !strings.Contains(want, "K") {
		want += "K"
	}
	if !strings.Contains(want, "t") && !strings.Contains(want, "A") {
		want += "t"
	}
	if want == flags {
		return
	}
	if err := d.rdb.ConfigSet(ctx, "notify-keyspace-events", want).Err(); err != nil {
		d.cfg.Logger.Warn("cannot enable keyspace notifications; polling", "err", err)
		return
	}
	d.cfg.Logger.Info("enabled keyspace notifications", "flags", want)
}
