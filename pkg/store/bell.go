package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/backoff"
)

// Delivery states of a shard, as Doorbell.Shards reports them.
const (
	// DeliveryNotify: the shard's probe came back; wake-ups arrive.
	DeliveryNotify = "notify"
	// DeliveryPoll: the shard's notifications are off and the node cannot
	// turn them on (ShardStatus.Fix says what to change); its channels are
	// polled.
	DeliveryPoll = "poll"
	// DeliveryStalled: notifications should arrive but the probe did not
	// come back; the shard is polled while its connection is replaced.
	DeliveryStalled = "stalled"
	// DeliveryStarting: no probe has been judged yet.
	DeliveryStarting = "starting"
)

// ShardStatus is one shard's wake-up path, for readiness.
type ShardStatus struct {
	// Shard names the shard: its primary's address, or the one server.
	Shard string `json:"shard"`
	// Delivery is DeliveryNotify, DeliveryPoll, DeliveryStalled or DeliveryStarting.
	Delivery string `json:"delivery"`
	// Channels is how many watched channels the shard owns.
	Channels int `json:"channels"`
	// NotifyKeyspaceEvents is the shard's setting as last read ("" unknown).
	NotifyKeyspaceEvents string `json:"notify_keyspace_events,omitempty"`
	// Fix says which setting to change on which server, when the node
	// cannot make notifications work itself.
	Fix string `json:"fix,omitempty"`
}

// Healthy reports whether delivery from the shard works: notified, or
// polled on purpose.
func (s ShardStatus) Healthy() bool {
	return s.Delivery == DeliveryNotify || s.Delivery == DeliveryPoll
}

// pubsubClient is what a shard's bell needs of its server.
type pubsubClient interface {
	configurer
	Subscribe(ctx context.Context, channels ...string) *redis.PubSub
}

// shardBell is the wake-up path of one shard: a pub/sub connection to its
// primary subscribed to the keyspace notifications of the watched keys the
// shard owns, and a probe key on the shard that proves the connection.
type shardBell struct {
	d        *Doorbell
	name     string
	rdb      pubsubClient
	own      *redis.Client // a connection of the bell's own, closed with it
	probeKey string
	// whole: this shard holds every key, so ringing all of its channels
	// is ringing all (Doorbell.RingAll).
	whole atomic.Bool

	mu      sync.Mutex
	pending map[string]bool // channel → watch (true) or unwatch (false)
	watched map[string]struct{}
	changed chan struct{}
	reprobe chan struct{} // the probe's subscription was (re)confirmed

	proven     atomic.Bool
	everProven atomic.Bool
	judged     atomic.Bool  // a probe has been judged
	probeSeen  atomic.Int64 // unix nanos of the last probe notification
	alive      atomic.Int64 // unix nanos of the last healthy loop turn
	notify     atomic.Pointer[notifySetting]

	cancel context.CancelFunc
	done   chan struct{}
}

func newShardBell(d *Doorbell, name string, rdb pubsubClient, own *redis.Client, probeKey string) *shardBell {
	b := &shardBell{
		d: d, name: name, rdb: rdb, own: own, probeKey: probeKey,
		pending: make(map[string]bool),
		watched: make(map[string]struct{}),
		changed: make(chan struct{}, 1),
		reprobe: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	b.alive.Store(time.Now().UnixNano())
	return b
}

// start runs the bell until stop.
func (b *shardBell) start(ctx context.Context) {
	ctx, b.cancel = context.WithCancel(ctx)
	go func() {
		defer close(b.done)
		b.run(ctx)
	}()
}

// stop ends the bell and waits for it. It is safe to call more than once.
func (b *shardBell) stop() {
	if b.cancel == nil {
		return
	}
	b.cancel()
	<-b.done
	if b.own != nil {
		b.own.Close()
	}
}

func (b *shardBell) set(channel string, watch bool) {
	b.mu.Lock()
	b.pending[channel] = watch
	b.mu.Unlock()
	b.signal()
}

func (b *shardBell) signal() {
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

// assign makes want the bell's channels.
func (b *shardBell) assign(want map[string]struct{}) {
	b.mu.Lock()
	for ch := range b.watched {
		if _, ok := want[ch]; !ok {
			b.pending[ch] = false
		}
	}
	for ch, w := range b.pending {
		if _, ok := want[ch]; w && !ok {
			b.pending[ch] = false
		}
	}
	for ch := range want {
		b.pending[ch] = true
	}
	b.mu.Unlock()
	b.signal()
}

// channels returns the channels the bell watches or is about to.
func (b *shardBell) channels() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.watched)+len(b.pending))
	for ch := range b.watched {
		if w, ok := b.pending[ch]; !ok || w {
			out = append(out, ch)
		}
	}
	for ch, w := range b.pending {
		if _, had := b.watched[ch]; w && !had {
			out = append(out, ch)
		}
	}
	return out
}

func (b *shardBell) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.watched)
}

// ringAll rings every channel of the shard.
func (b *shardBell) ringAll() {
	if b.whole.Load() {
		b.d.ringer.RingAll()
		return
	}
	for _, ch := range b.channels() {
		b.d.ringer.Check(ch)
	}
}

func (b *shardBell) aliveNow() bool {
	return time.Since(time.Unix(0, b.alive.Load())) < 2*b.d.cfg.ProbeInterval+time.Second
}

func (b *shardBell) status() ShardStatus {
	st := ShardStatus{Shard: b.name, Channels: b.count()}
	n := b.notify.Load()
	if n != nil {
		st.NotifyKeyspaceEvents = n.flags
	}
	switch {
	case b.proven.Load():
		st.Delivery = DeliveryNotify
	case n != nil && n.unreachable:
		st.Delivery, st.Fix = DeliveryStalled, n.fix(b.name)
	case n != nil && n.read && !n.ok, n != nil && !n.read && !b.everProven.Load():
		st.Delivery, st.Fix = DeliveryPoll, n.fix(b.name)
	case !b.judged.Load():
		st.Delivery = DeliveryStarting
	default:
		st.Delivery = DeliveryStalled
	}
	return st
}

func (b *shardBell) run(ctx context.Context) {
	b.checkNotifications(ctx)
	probe := time.NewTicker(b.d.cfg.ProbeInterval)
	defer probe.Stop()
	for ctx.Err() == nil {
		b.session(ctx, probe.C)
	}
}

func (b *shardBell) checkNotifications(ctx context.Context) {
	n := notifySetting{polled: true}
	if !b.d.cfg.Polled {
		n = enableNotifications(ctx, b.rdb)
	}
	if ctx.Err() != nil {
		return
	}
	old := b.notify.Swap(&n)
	log := b.d.cfg.Logger.With("shard", b.name)
	switch {
	case n.polled && old == nil:
		log.Info("the store has no keyspace notifications: polling it", "every", b.d.cfg.PollInterval)
	case n.polled:
	case n.unreachable && (old == nil || !old.unreachable):
		log.Warn("cannot reach Redis; retrying", "fix", n.fix(b.name), "err", n.getErr)
	case n.unreachable:
	case n.setErr != nil && (old == nil || old.setErr == nil):
		log.Warn("cannot enable keyspace notifications; polling this shard", "fix", n.fix(b.name), "err", n.setErr)
	case n.getErr != nil && (old == nil || old.getErr == nil):
		log.Warn("cannot read notify-keyspace-events; the probe decides", "fix", n.fix(b.name), "err", n.getErr)
	case n.ok && (old == nil || old.flags != n.flags):
		log.Info("keyspace notifications on", "flags", n.flags)
	}
}

// session runs one pub/sub connection until ctx ends or a probe fails.
func (b *shardBell) session(ctx context.Context, probe <-chan time.Time) {
	ps := b.subscribeAll(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.receive(ctx, ps)
	}()
	defer func() {
		ps.Close()
		wg.Wait()
		b.ringAll()
	}()
	sent := time.Now()
	b.sendProbe(ctx)
	misses := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.changed:
			b.apply(ctx, ps)
		case <-b.reprobe:
			// go-redis resubscribed after a dropped connection: a probe sent
			// in the gap proves nothing, so start its clock again.
			sent = time.Now()
			b.sendProbe(ctx)
		case now := <-probe:
			b.alive.Store(now.UnixNano())
			if b.probeSeen.Load() < sent.UnixNano() {
				misses++
				if b.probeFailed(ctx, misses) {
					return
				}
			} else {
				misses = 0
			}
			b.judged.Store(true)
			sent = now
			b.sendProbe(ctx)
		}
	}
}

// probeFailed switches the shard to polling and reports whether its pub/sub
// connection should be replaced: when it had been proven (a stall, as after
// a failover), or every fifth miss while notifications are known to be on.
// A connection that never carried a notification is otherwise not the
// problem, and resubscribing every channel each probe would cost Redis.
func (b *shardBell) probeFailed(ctx context.Context, misses int) (reconnect bool) {
	reconnect = b.proven.Swap(false)
	if reconnect {
		b.d.cfg.Logger.Warn("doorbell probe lost; polling and reconnecting", "shard", b.name)
	}
	b.d.reloadSoon()
	b.checkNotifications(ctx)
	if n := b.notify.Load(); !reconnect && n != nil && n.ok && misses%5 == 0 {
		b.d.cfg.Logger.Warn("doorbell probe not answered though notifications are on; reconnecting", "shard", b.name, "misses", misses)
		reconnect = true
	}
	return reconnect
}

// sendProbe adds to the shard's probe stream, which expires if the node
// goes away for good.
func (b *shardBell) sendProbe(ctx context.Context) {
	pipe := b.d.rdb.Pipeline()
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: b.probeKey, MaxLen: 1, Values: []any{"probe", time.Now().UnixNano()}})
	pipe.PExpire(ctx, b.probeKey, probeTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		b.d.cfg.Logger.Debug("doorbell probe failed", "shard", b.name, "err", err)
	}
}

// subscribeAll opens a pub/sub connection on the probe and every watched channel.
func (b *shardBell) subscribeAll(ctx context.Context) *redis.PubSub {
	ps := b.rdb.Subscribe(ctx, b.d.notifyPfx+b.probeKey)
	b.mu.Lock()
	for ch, watch := range b.pending {
		if watch {
			b.watched[ch] = struct{}{}
		} else {
			delete(b.watched, ch)
		}
	}
	clear(b.pending)
	names := make([]string, 0, len(b.watched))
	for ch := range b.watched {
		names = append(names, b.d.notifyPfx+b.d.cfg.Store.Key(ch))
	}
	b.mu.Unlock()
	b.command(ctx, ps.Subscribe, names)
	return ps
}

// apply sends the SUBSCRIBE and UNSUBSCRIBE commands for pending changes.
func (b *shardBell) apply(ctx context.Context, ps *redis.PubSub) {
	var sub, unsub []string
	b.mu.Lock()
	for ch, watch := range b.pending {
		_, had := b.watched[ch]
		name := b.d.notifyPfx + b.d.cfg.Store.Key(ch)
		switch {
		case watch && !had:
			b.watched[ch] = struct{}{}
			sub = append(sub, name)
		case !watch && had:
			delete(b.watched, ch)
			unsub = append(unsub, name)
		}
	}
	clear(b.pending)
	b.mu.Unlock()
	b.command(ctx, ps.Subscribe, sub)
	b.command(ctx, ps.Unsubscribe, unsub)
}

// command sends names in batches. go-redis remembers the channels even when a
// write fails and subscribes them again on reconnect, so errors only delay.
func (b *shardBell) command(ctx context.Context, fn func(context.Context, ...string) error, names []string) {
	for len(names) > 0 {
		n := min(len(names), subscribeBatch)
		if err := fn(ctx, names[:n]...); err != nil {
			b.d.cfg.Logger.Debug("doorbell subscription failed", "shard", b.name, "err", err)
		}
		names = names[n:]
	}
}

func (b *shardBell) receive(ctx context.Context, ps *redis.PubSub) {
	pace := backoff.New(10*time.Millisecond, time.Second)
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			b.ringAll()
			b.d.reloadSoon()
			if !pace.Sleep(ctx) {
				return
			}
			continue
		}
		pace.Reset()
		b.handle(msg)
	}
}

func (b *shardBell) handle(msg any) {
	switch m := msg.(type) {
	case *redis.Subscription:
		if m.Kind == "subscribe" {
			b.ring(m.Channel, false)
		}
	case *redis.Message:
		if m.Payload == "xadd" {
			b.ring(m.Channel, true)
		}
	}
}

// ring handles a notification, or the confirmation of a subscription, which
// rings too: entries added before it took effect must still be read.
func (b *shardBell) ring(name string, notified bool) {
	key, ok := strings.CutPrefix(name, b.d.notifyPfx)
	if !ok {
		return
	}
	if key == b.probeKey {
		if !notified {
			select {
			case b.reprobe <- struct{}{}:
			default:
			}
			return
		}
		b.probeSeen.Store(time.Now().UnixNano())
		if !b.proven.Swap(true) {
			b.everProven.Store(true)
			b.judged.Store(true)
			b.d.cfg.Logger.Info("doorbell proven: keyspace notifications arrive", "shard", b.name)
			// Entries added since the last poll, before notifications were
			// (re)enabled, rang nothing, and polling stops now: read them.
			b.ringAll()
		}
		return
	}
	ch, ok := strings.CutPrefix(key, b.d.cfg.Store.prefix)
	switch {
	case !ok:
	case notified:
		b.d.ringer.Ring(ch)
	default:
		b.d.ringer.Check(ch)
	}
}
