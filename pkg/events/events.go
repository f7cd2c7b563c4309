// Package events records the cluster's lifecycle in a Redis stream the
// application reads: channels that became occupied or vacant, clients
// that connected or disconnected (and why), subscriptions added and
// removed. Exactly one entry per transition, cluster-wide: each is decided
// and appended in one atomic script over keys in the stream's own slot
// (scripts.go), and a node that dies has its connections and channels
// reported lost by the survivors, once.
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/backoff"
)

// Event kinds, for Config.Kinds.
const (
	KindChannel      = "channel"
	KindClient       = "client"
	KindSubscription = "subscription"
)

// Defaults for Config.
const (
	DefaultVacateDelay = 5 * time.Second
	DefaultMaxLen      = 100000
	// DefaultHeartbeat is how often a node tells it is alive; a node
	// silent for DefaultLostAfter is reported lost by the others.
	DefaultHeartbeat = 2 * time.Second
	DefaultLostAfter = 10 * time.Second
	// queueLen bounds the changes waiting to be recorded.
	queueLen = 1 << 16
)

// Disconnect reasons.
const (
	ReasonClosed   = "closed"
	ReasonDrained  = "drained"
	ReasonShed     = "shed"
	ReasonSlow     = "slow"
	ReasonExpired  = "expired"
	ReasonKicked   = "kicked"
	ReasonNodeLost = "node_lost"
)

// Config configures a Recorder.
type Config struct {
	// Client is the Redis connection. Required.
	Client redis.UniversalClient
	// Stream is the events stream's key; it must lie outside the channel
	// prefix (Prefix), so no client can subscribe to it. Required.
	Stream string
	// Prefix is the channel streams' prefix, which Stream must not start
	// with.
	Prefix string
	// Kinds are the kinds recorded: KindChannel, KindClient,
	// KindSubscription. Nil means all.
	Kinds []string
	// Channels limits channel and subscription events to the channels
	// these patterns match (names, or prefixes ending in '*'). Nil means
	// every channel.
	Channels []string
	// Node names this node in the events.
	Node string
	// VacateDelay is how long a channel stays occupied on this node after
	// its last local subscriber leaves, so that a client reconnecting at
	// once does not flap it. Zero means DefaultVacateDelay.
	VacateDelay time.Duration
	// MaxLen bounds the stream (MAXLEN ~). Zero means DefaultMaxLen.
	MaxLen int64
	// Heartbeat and LostAfter: zero means DefaultHeartbeat and
	// DefaultLostAfter.
	Heartbeat, LostAfter time.Duration
	// OnLost is called when this node finds it was reported lost (it was
	// cut off from Redis for longer than LostAfter): its connections were
	// reported disconnected, and it should end them. Nil means none.
	OnLost func()
	// Logger receives failures. Nil means discard.
	Logger *slog.Logger
}

// Conn is a connection as the events describe it.
type Conn struct {
	N         uint64 // its number on this node (NewConn)
	Client    string
	User      string
	Transport string
}

// Recorder records one node's lifecycle changes and reaps dead nodes'.
// Its methods never block: changes queue, in order, for a goroutine that
// applies them, retrying while Redis is away (each script is idempotent).
type Recorder struct {
	cfg      Config
	base     string
	inc      atomic.Pointer[string] // this incarnation
	kinds    map[string]bool
	queue    chan change
	dropped  atomic.Uint64
	recorded atomic.Uint64
	reaped   atomic.Uint64

	mu     sync.Mutex
	local  map[string]int         // channel -> local subscriptions
	timers map[string]*time.Timer // pending vacates
	connN  atomic.Uint64
}

type change struct {
	script *redis.Script
	args   []any
}

// ErrStreamInPrefix refuses an events stream a client could subscribe to.
var ErrStreamInPrefix = errors.New("events: the events stream must lie outside the channel prefix")

// New returns a Recorder for cfg; Run starts it.
func New(cfg Config) (*Recorder, error) {
	switch {
	case cfg.Client == nil || cfg.Stream == "":
		return nil, errors.New("events: a Redis client and a stream are required")
	case cfg.Prefix != "" && strings.HasPrefix(cfg.Stream, cfg.Prefix):
		return nil, fmt.Errorf("%w: %q starts with %q", ErrStreamInPrefix, cfg.Stream, cfg.Prefix)
	}
	tag := hashTag(cfg.Stream)
	if strings.ContainsAny(tag, "{}") {
		return nil, fmt.Errorf("events: the stream key %q has a brace outside a hash tag", cfg.Stream)
	}
	if cfg.VacateDelay <= 0 {
		cfg.VacateDelay = DefaultVacateDelay
	}
	if cfg.MaxLen <= 0 {
		cfg.MaxLen = DefaultMaxLen
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.LostAfter <= 0 {
		cfg.LostAfter = DefaultLostAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{cfg: cfg, base: "{" + tag + "}",
		queue: make(chan change, queueLen),
		local: map[string]int{}, timers: map[string]*time.Timer{}}
	id := newID()
	r.inc.Store(&id)
	var err error
	if r.kinds, err = kindSet(cfg.Kinds); err != nil {
		return nil, err
	}
	return r, nil
}

// kindSet reads a list of kinds; nil means all of them.
func kindSet(kinds []string) (map[string]bool, error) {
	if kinds == nil {
		kinds = []string{KindChannel, KindClient, KindSubscription}
	}
	set := map[string]bool{}
	for _, k := range kinds {
		switch k {
		case KindChannel, KindClient, KindSubscription:
			set[k] = true
		default:
			return nil, fmt.Errorf("events: unknown kind %q (channel, client, subscription)", k)
		}
	}
	return set, nil
}

// hashTag is the part of key Redis Cluster hashes.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (r *Recorder) incarnation() string { return *r.inc.Load() }

// NewConn numbers a new connection of this node.
func (r *Recorder) NewConn() uint64 { return r.connN.Add(1) }

// connID names a connection in the cluster: this incarnation and its
// number. A node that was reported lost starts a new incarnation, so its
// older connections' later changes find nothing registered under their
// new names, and change nothing: they were reported disconnected.
func (r *Recorder) connID(c Conn) string {
	return r.incarnation() + "-" + strconv.FormatUint(c.N, 36)
}

func (r *Recorder) on(kind string) bool { return r.kinds[kind] }

// covers reports whether channel events and subscription events concern
// channel.
func (r *Recorder) covers(channel string) bool {
	if r.cfg.Channels == nil {
		return true
	}
	for _, p := range r.cfg.Channels {
		if p == channel || (strings.HasSuffix(p, "*") && strings.HasPrefix(channel, p[:len(p)-1])) {
			return true
		}
	}
	return false
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (r *Recorder) enqueue(s *redis.Script, args ...any) {
	select {
	case r.queue <- change{script: s, args: args}:
	default:
		r.dropped.Add(1)
	}
}

// Connected records c's connection. Every connection is registered, so a
// dead node's can be reported lost; only with client events does it
// emit.
func (r *Recorder) Connected(c Conn) {
	if r.on(KindClient) || r.on(KindSubscription) {
		r.enqueue(connectScript, r.incarnation(), r.connID(c), c.Client, c.User, c.Transport, flag(r.on(KindClient)))
	}
}

// Disconnected records the end of c's connection, for reason. Its
// subscriptions' ends are recorded first, by Unsubscribed.
func (r *Recorder) Disconnected(c Conn, reason string) {
	if r.on(KindClient) || r.on(KindSubscription) {
		r.enqueue(disconnectScript, r.incarnation(), r.connID(c), reason, flag(r.on(KindClient)))
	}
}

// Subscribed records c's subscription to channel.
func (r *Recorder) Subscribed(c Conn, channel string) {
	if !r.covers(channel) {
		return
	}
	if r.on(KindSubscription) {
		r.enqueue(subscribeScript, r.incarnation(), r.connID(c), channel)
	}
	if r.on(KindChannel) {
		r.mu.Lock()
		r.local[channel]++
		if t := r.timers[channel]; t != nil {
			t.Stop()
			delete(r.timers, channel)
		}
		first := r.local[channel] == 1
		r.mu.Unlock()
		if first {
			r.enqueue(occupyScript, r.incarnation(), channel, "1")
		}
	}
}

// Unsubscribed records the end of c's subscription to channel, for
// reason; the channel's last local subscriber leaving vacates it here
// after the vacate delay.
func (r *Recorder) Unsubscribed(c Conn, channel, reason string) {
	if !r.covers(channel) {
		return
	}
	if r.on(KindSubscription) {
		r.enqueue(unsubscribeScript, r.incarnation(), r.connID(c), channel, reason)
	}
	if r.on(KindChannel) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.local[channel]--; r.local[channel] > 0 {
			return
		}
		delete(r.local, channel)
		r.timers[channel] = time.AfterFunc(r.cfg.VacateDelay, func() { r.vacate(channel) })
	}
}

func (r *Recorder) vacate(channel string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.local[channel] > 0 || r.timers[channel] == nil {
		return
	}
	delete(r.timers, channel)
	r.enqueue(vacateScript, r.incarnation(), channel, "1")
}

// Run applies queued changes, keeps this node's heartbeat and reaps dead
// nodes until ctx ends; then it applies what is queued within a bound.
func (r *Recorder) Run(ctx context.Context) error {
	r.loadScripts(ctx)
	if err := r.beat(ctx, "new"); err != nil {
		r.cfg.Logger.Warn("events: first heartbeat failed; retrying", "err", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.beatLoop(ctx) })
	defer wg.Wait()
	b := backoff.New(50*time.Millisecond, 2*time.Second)
	for {
		select {
		case <-ctx.Done():
			return r.flush()
		case c := <-r.queue:
			batch := r.take(c)
			for !r.apply(ctx, batch) {
				if !b.Sleep(ctx) {
					return r.flush()
				}
			}
			b.Reset()
		}
	}
}

// maxBatch bounds the changes sent in one pipeline.
const maxBatch = 256

// take returns first and the changes queued behind it, up to maxBatch,
// in order.
func (r *Recorder) take(first change) []change {
	batch := []change{first}
	for len(batch) < maxBatch {
		select {
		case c := <-r.queue:
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

// flush applies what is queued, within a few seconds: a stopping node's
// last disconnects and vacates.
func (r *Recorder) flush() error {
	r.mu.Lock()
	for ch, t := range r.timers { // vacate now: the node is going
		t.Stop()
		delete(r.timers, ch)
		r.enqueue(vacateScript, r.incarnation(), ch, "1")
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		select {
		case c := <-r.queue:
			if !r.apply(ctx, r.take(c)) {
				return ctx.Err()
			}
		default:
			// Whatever this incarnation still holds is reported now, and
			// the incarnation forgotten.
			r.ReapIncarnation(ctx, r.incarnation())
			return nil
		}
	}
}

// apply runs a batch of changes in one pipeline, in order, and reports
// whether all ran. Each change is idempotent, so a batch that failed
// part way is run again whole.
func (r *Recorder) apply(ctx context.Context, batch []change) bool {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	pipe := r.cfg.Client.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, c := range batch {
		args := append([]any{r.base, r.cfg.MaxLen, now, r.cfg.Node}, c.args...)
		cmds[i] = c.script.EvalSha(cctx, pipe, []string{r.cfg.Stream}, args...)
	}
	pipe.Exec(cctx)
	for _, cmd := range cmds {
		err := cmd.Err()
		if err == nil || errors.Is(err, redis.Nil) {
			continue
		}
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			r.loadScripts(cctx)
		} else {
			r.cfg.Logger.Debug("events: failed to record changes; retrying", "err", err)
		}
		return false
	}
	r.recorded.Add(uint64(len(batch)))
	return true
}

// loadScripts loads the scripts on every primary, for EVALSHA.
func (r *Recorder) loadScripts(ctx context.Context) {
	for _, s := range []*redis.Script{connectScript, disconnectScript, subscribeScript, unsubscribeScript,
		occupyScript, vacateScript, heartbeatScript, reapScript} {
		if err := s.Load(ctx, r.cfg.Client).Err(); err != nil {
			r.cfg.Logger.Debug("events: failed to load a script", "err", err)
		}
	}
}

func (r *Recorder) beat(ctx context.Context, mode string) error {
	res, err := heartbeatScript.Run(ctx, r.cfg.Client, []string{r.cfg.Stream},
		r.base, r.cfg.MaxLen, strconv.FormatInt(time.Now().UnixMilli(), 10), r.cfg.Node, r.incarnation(), mode).Int()
	if err == nil && res == 0 {
		// Reported lost while cut off: what it held was reported
		// disconnected. It starts over as a new incarnation, and its
		// connections are ended (OnLost), so their clients reconnect and
		// are reported connected again.
		r.cfg.Logger.Warn("events: this node was reported lost while cut off from Redis; its connections were reported disconnected and are ended")
		r.mu.Lock()
		id := newID()
		r.inc.Store(&id)
		clear(r.local)
		for ch, t := range r.timers {
			t.Stop()
			delete(r.timers, ch)
		}
		r.mu.Unlock()
		if r.cfg.OnLost != nil {
			r.cfg.OnLost()
		}
		return r.beat(ctx, "new")
	}
	return err
}

// beatLoop keeps the heartbeat and reaps incarnations silent for longer
// than LostAfter, and, at start, this node's own earlier ones.
func (r *Recorder) beatLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.Heartbeat)
	defer t.Stop()
	r.reap(ctx, true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.beat(ctx, "")
			r.reap(ctx, false)
		}
	}
}

// reap reports lost every incarnation silent for LostAfter, and with
// mine, this node's other incarnations (it restarted).
func (r *Recorder) reap(ctx context.Context, mine bool) {
	r.reapWhere(ctx, func(node string, silent time.Duration) bool {
		return silent > r.cfg.LostAfter || mine && node == r.cfg.Node
	})
}

// NodeGone reaps the incarnations of node that have stopped beating: the
// cluster saw the node die, sooner than LostAfter would.
func (r *Recorder) NodeGone(ctx context.Context, node string) {
	r.reapWhere(ctx, func(name string, silent time.Duration) bool {
		return name == node && silent > 2*r.cfg.Heartbeat
	})
}

// reapWhere reaps the other incarnations dead says are dead, given their
// node and how long they have been silent.
func (r *Recorder) reapWhere(ctx context.Context, dead func(node string, silent time.Duration) bool) {
	all, err := r.cfg.Client.HGetAll(ctx, r.base+":nodes").Result()
	if err != nil {
		return
	}
	now := time.Now().UnixMilli()
	for inc, v := range all {
		node, ms, _ := strings.Cut(v, "|")
		last, _ := strconv.ParseInt(ms, 10, 64)
		if inc != r.incarnation() && dead(node, time.Duration(now-last)*time.Millisecond) {
			r.ReapIncarnation(ctx, inc)
		}
	}
}

// ReapIncarnation reports a dead incarnation's connections disconnected
// (node_lost), their subscriptions removed and the channels only it held
// vacated, once, whoever asks.
func (r *Recorder) ReapIncarnation(ctx context.Context, inc string) {
	res, err := reapScript.Run(ctx, r.cfg.Client, []string{r.cfg.Stream},
		r.base, r.cfg.MaxLen, time.Now().UTC().Format(time.RFC3339Nano), r.cfg.Node, inc,
		flag(r.on(KindClient)), flag(r.on(KindChannel))).Int()
	if err != nil {
		r.cfg.Logger.Warn("events: failed to report a lost node's connections; retrying", "err", err)
		return
	}
	if res == 1 {
		r.reaped.Add(1)
		r.cfg.Logger.Info("events: reported a lost node's connections and channels", "incarnation", inc)
	}
}

// Stats are what a Recorder did.
type Stats struct {
	Recorded, Dropped, Reaped uint64
	Queued                    int
}

// Stats returns the counts so far.
func (r *Recorder) Stats() Stats {
	return Stats{Recorded: r.recorded.Load(), Dropped: r.dropped.Load(), Reaped: r.reaped.Load(), Queued: len(r.queue)}
}
