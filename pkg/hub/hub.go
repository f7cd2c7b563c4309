package hub

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/pushcluster/pushcluster/internal/backoff"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// Defaults for Config.
const (
	DefaultReadBatch       = 256
	DefaultReplayBatch     = 1024
	DefaultChannelsPerRead = 256
	replayReadTimeout      = 10 * time.Second
	// shardRetry is how long channels whose shard failed wait to be read again.
	shardRetry = 100 * time.Millisecond
	// caughtUpFor is how long a replay that found nothing after its
	// position answers the replays from the same position without a
	// read: a dead node's clients come back over a second or two, most
	// with nothing missed, and would otherwise each read the store. A
	// stream deleted within it is told to them with its next entry, as
	// to live subscribers, rather than at once.
	caughtUpFor = time.Second
)

// Bell tells the hub which channels of interest may have moved: it
// watches the channels the hub names, and rings the hub (Ring, RingAll)
// when one may have new entries. Its methods must not block.
// *store.Doorbell implements it, run with the hub as its ringer.
type Bell interface {
	// Watch and Unwatch name the channels of interest.
	Watch(channel string)
	Unwatch(channel string)
	// Recheck asks for the deployment's shape to be read again soon, after
	// reads that failed.
	Recheck()
	// Alive reports whether the bell's loops turn.
	Alive() bool
	// Proven reports whether wake-ups are known to arrive on every shard.
	Proven() bool
	// Shards reports each shard's wake-up path, for readiness.
	Shards() []store.ShardStatus
}

var _ Bell = (*store.Doorbell)(nil)

// Config configures a Hub. Zero values are the defaults named on each
// field.
type Config struct {
	// Store is the log the hub reads. Required.
	Store *store.Store
	// Bell rings the hub when channels move. Required; whoever owns it runs
	// it with the hub as its ringer.
	Bell Bell
	// ReadBatch is how many entries one read takes from one channel.
	// Zero means DefaultReadBatch.
	ReadBatch int
	// ReplayBatch is how many entries one replay read takes.
	// Zero means DefaultReplayBatch.
	ReplayBatch int
	// ChannelsPerRead is how many channels one pipelined read covers.
	// Zero means DefaultChannelsPerRead.
	ChannelsPerRead int
	// FanoutWorkers is how many goroutines write one channel's messages to
	// its subscribers. Zero means GOMAXPROCS.
	FanoutWorkers int
	// RecentBytes bounds the entry data channels keep, all together, of the
	// reads they have just fanned out, for replays from them (see
	// recentRun); RecentFor is how long they keep a read after it was read
	// or last replayed. Zero means DefaultRecentBytes and DefaultRecentFor;
	// a negative RecentBytes keeps nothing.
	RecentBytes int64
	RecentFor   time.Duration
	// ReadLatency, when set, is told the round trip of every pipelined
	// read of dirty channels. It must not block.
	ReadLatency func(time.Duration)
	// Logger receives the hub's events. Nil means discard.
	Logger *slog.Logger
}

// Validate reports every problem with cfg at once.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("hub: no store"))
	}
	if cfg.Bell == nil {
		errs = append(errs, errors.New("hub: no bell"))
	}
	if cfg.ReadBatch < 0 || cfg.ReplayBatch < 0 || cfg.ChannelsPerRead < 0 || cfg.FanoutWorkers < 0 {
		errs = append(errs, errors.New("hub: read sizes must not be negative"))
	}
	return errors.Join(errs...)
}

func (cfg Config) withDefaults() Config {
	if cfg.ReadBatch == 0 {
		cfg.ReadBatch = DefaultReadBatch
	}
	if cfg.ReplayBatch == 0 {
		cfg.ReplayBatch = DefaultReplayBatch
	}
	if cfg.ChannelsPerRead == 0 {
		cfg.ChannelsPerRead = DefaultChannelsPerRead
	}
	if cfg.RecentBytes == 0 {
		cfg.RecentBytes = DefaultRecentBytes
	}
	if cfg.RecentFor <= 0 {
		cfg.RecentFor = DefaultRecentFor
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Hub fans entries out to local subscribers. Create it with New and start
// it with Run.
type Hub struct {
	cfg   Config
	store *store.Store
	bell  Bell

	mu       sync.Mutex
	channels map[string]*channel

	dirtyMu   sync.Mutex
	dirty     []*channel // channels to read, oldest first, from dirtyHead
	dirtyHead int
	wake      chan struct{}

	stats       counters
	readFailing atomic.Bool
	fanout      *fanout
	replays     singleflight.Group
	keeper      keeper
	kept        atomic.Int64 // bytes of entry data channels keep
}

// New returns a hub for cfg.
func New(cfg Config) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	h := &Hub{
		cfg:      cfg,
		store:    cfg.Store,
		bell:     cfg.Bell,
		channels: make(map[string]*channel),
		wake:     make(chan struct{}, 1),
		fanout:   newFanout(cfg.FanoutWorkers),
	}
	return h, nil
}

// Run reads and fans out until ctx ends; it returns once every goroutine it
// started has exited. The bell runs on its own, ringing the hub.
func (h *Hub) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.keeper.run(ctx, h.cfg.RecentFor, &h.kept)
	}()
	h.fanout.run()
	h.readLoop(ctx)
	h.fanout.stop()
	wg.Wait()
	return nil
}

// Ready reports whether live delivery works: the doorbell turns, every
// shard's wake-up path is proven or polled on purpose (not stalled), and the
// last read from the store succeeded (or nothing needed reading).
func (h *Hub) Ready() bool {
	if !h.bell.Alive() || h.readFailing.Load() {
		return false
	}
	shards := h.bell.Shards()
	for _, s := range shards {
		if !s.Healthy() {
			return false
		}
	}
	return len(shards) > 0
}

// Notified reports whether keyspace notifications are proven to arrive on
// every shard; false means the node polls some.
func (h *Hub) Notified() bool { return h.bell.Proven() }

// Shards reports each shard's wake-up path: one for a single Redis, one per
// primary of a Redis Cluster.
func (h *Hub) Shards() []store.ShardStatus { return h.bell.Shards() }

var _ store.Ringer = (*Hub)(nil)

// Ring marks channel to be read: a notification says it moved. It does
// not block.
func (h *Hub) Ring(name string) {
	h.stats.wakeups.Add(1)
	if ch := h.lookup(name); ch != nil {
		h.markDirty(true, ch)
	}
}

// Check marks channel to be checked, and read if it moved: it may have
// (its subscription was just confirmed, so a notification may have been
// missed). It does not block.
func (h *Hub) Check(name string) {
	if ch := h.lookup(name); ch != nil {
		h.markDirty(false, ch)
	}
}

// RingAll marks every channel of interest to be checked, and read if it
// moved: wake-ups may have been lost. It does not block.
func (h *Hub) RingAll() {
	h.stats.sweeps.Add(1)
	h.mu.Lock()
	all := make([]*channel, 0, len(h.channels))
	for _, ch := range h.channels {
		all = append(all, ch)
	}
	h.mu.Unlock()
	h.markDirty(false, all...)
}

func (h *Hub) lookup(name string) *channel {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.channels[name]
}

// markDirty queues chs to be read; sure says they are known to have moved,
// otherwise the read loop checks first which did (store.Moved).
func (h *Hub) markDirty(sure bool, chs ...*channel) {
	h.dirtyMu.Lock()
	for _, ch := range chs {
		ch.sure = ch.sure || sure
		if !ch.dirty {
			ch.dirty = true
			h.dirty = append(h.dirty, ch)
		}
	}
	h.dirtyMu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// takeDirty removes up to n live channels from the dirty list, oldest
// first: those sure to have moved, and those to check first.
func (h *Hub) takeDirty(n int) (sure, check []*channel) {
	h.dirtyMu.Lock()
	defer h.dirtyMu.Unlock()
	i := h.dirtyHead
	for ; i < len(h.dirty) && len(sure)+len(check) < n; i++ {
		ch := h.dirty[i]
		h.dirty[i] = nil
		switch {
		case !ch.live.Load():
		case ch.sure:
			sure = append(sure, ch)
		default:
			check = append(check, ch)
		}
		ch.dirty, ch.sure = false, false
	}
	h.dirtyHead = i
	if h.dirtyHead == len(h.dirty) {
		h.dirty, h.dirtyHead = h.dirty[:0], 0
	} else if h.dirtyHead > len(h.dirty)/2 { // compact now and then, not per take
		h.dirty = append(h.dirty[:0], h.dirty[h.dirtyHead:]...)
		h.dirtyHead = 0
	}
	return sure, check
}

func (h *Hub) readLoop(ctx context.Context) {
	b := backoff.New(10*time.Millisecond, time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		}
		for ctx.Err() == nil {
			batch, check := h.takeDirty(h.cfg.ChannelsPerRead)
			if len(batch) == 0 && len(check) == 0 {
				h.readFailing.Store(false)
				break
			}
			if len(check) > 0 {
				if batch = append(batch, h.moved(ctx, check)...); len(batch) == 0 {
					continue
				}
			}
			if err := h.read(ctx, batch); err != nil {
				h.markDirty(true, batch...)
				h.cfg.Logger.Warn("failed to read channels; retrying", "channels", len(batch), "err", err)
				b.Sleep(ctx)
				continue
			}
			b.Reset()
		}
	}
}

// moved returns the channels of chs whose streams moved past their cursors.
func (h *Hub) moved(ctx context.Context, chs []*channel) []*channel {
	cursors := make([]store.Cursor, len(chs))
	for i, ch := range chs {
		cursors[i] = store.Cursor{Channel: ch.name, After: ch.cursor}
	}
	h.stats.checks.Add(1)
	h.stats.checked.Add(uint64(len(chs)))
	var out []*channel
	for i, m := range h.store.Moved(ctx, cursors) {
		if m {
			out = append(out, chs[i])
		}
	}
	return out
}

// read fetches one pipelined batch and fans it out.
func (h *Hub) read(ctx context.Context, batch []*channel) error {
	cursors := make([]store.Cursor, len(batch))
	for i, ch := range batch {
		// The channel's cursor is always an entry the hub read, or zero.
		cursors[i] = store.Cursor{Channel: ch.name, After: ch.cursor, Seen: true}
	}
	h.stats.reads.Add(1)
	start := time.Now()
	results, err := h.store.ReadMany(ctx, cursors, h.cfg.ReadBatch)
	h.observeRead(start)
	if err != nil {
		h.stats.readErrors.Add(1)
		h.readFailing.Store(true)
		h.bell.Recheck()
		return err
	}
	h.readFailing.Store(false)
	var retry []*channel
	for i, ch := range batch {
		if err := results[i].Err; err != nil {
			h.stats.readErrors.Add(1)
			if !errors.Is(err, store.ErrUnreadable) {
				retry = append(retry, ch) // its shard is down: read it again soon
				continue
			}
			// Only this channel's key is bad; it is read again when rung.
			h.cfg.Logger.Warn("cannot read channel", "channel", ch.name, "err", err)
			continue
		}
		ch.dispatch(&results[i], h.fanout, func(msgs []*Message) {
			ch.noteSizes(msgs)
			if ch.keep(msgs, start, &h.kept, h.cfg.RecentBytes, h.cfg.RecentFor) {
				h.keeper.add(ch)
			}
		})
		if results[i].Full {
			h.markDirty(true, ch)
		}
	}
	h.retryLater(retry)
	return nil
}

// retryLater marks chs dirty again after a pause, so that channels of a
// shard that is down wait for it without holding up the other shards'.
func (h *Hub) retryLater(chs []*channel) {
	if len(chs) == 0 {
		return
	}
	h.bell.Recheck()
	h.cfg.Logger.Debug("channels unreadable for now; retrying", "channels", len(chs), "channel", chs[0].name)
	time.AfterFunc(shardRetry, func() { h.markDirty(true, chs...) })
}
