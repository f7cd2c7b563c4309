package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// Defaults for Config.
const (
	DefaultPrefix = "push:"
	DefaultMaxLen = 10_000
	// DefaultChannelTTL lets a channel's stream expire a day after the
	// node last published to it: long enough for a client to come back
	// from a night away, short enough that channel names used once (one
	// per user, per session, per job) do not pile up in Redis.
	DefaultChannelTTL = 24 * time.Hour
)

var (
	// ErrNoClient is returned by New without a Redis client.
	ErrNoClient = errors.New("store: no Redis client")
	// ErrUnreadable is returned when Redis refuses to read a channel's key,
	// typically because it holds something other than a stream. Retrying
	// does not help until the key is fixed.
	ErrUnreadable = errors.New("store: channel key is not a readable stream")
)

// isReply reports whether err is an error reply from Redis (as opposed to a
// failed connection) that concerns only the command and key that got it,
// such as WRONGTYPE. Replies that say the server or the cluster cannot
// serve now (a shard without a primary, a slot being moved, a replica
// promoted or loading) are not: the same command succeeds later.
func isReply(err error) bool {
	var re redis.Error
	if err == nil || err == redis.Nil || !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	for _, p := range transientReplies {
		if strings.HasPrefix(msg, p) {
			return false
		}
	}
	return true
}

// transientReplies begin the error replies that pass: retry later.
var transientReplies = []string{"CLUSTERDOWN", "TRYAGAIN", "LOADING", "MASTERDOWN", "READONLY", "MOVED", "ASK", "BUSY", "NOREPLICAS"}

func unreadable(channel string, err error) error {
	return fmt.Errorf("%w: %q: %v", ErrUnreadable, channel, err)
}

// Config configures a Store.
type Config struct {
	// Client is the Redis connection. Required.
	Client redis.UniversalClient
	// Prefix is prepended to a channel name to form its stream key.
	// Defaults to DefaultPrefix ("push:").
	Prefix string
	// MaxLen bounds every stream the node publishes to (XADD MAXLEN ~), so
	// Redis memory stays bounded. Zero means DefaultMaxLen; negative means
	// no trimming.
	MaxLen int64
	// MaxAge bounds the same streams by age: each publish also trims the
	// entries older than MaxAge, by the node's clock (XTRIM MINID ~, or
	// XADD MINID ~ when MaxLen is off). Zero means no age bound.
	MaxAge time.Duration
	// ChannelTTL deletes a channel's stream once the node has not published
	// to it for this long: each publish sets the key's expiry again
	// (PEXPIRE). Zero means DefaultChannelTTL; negative means streams never
	// expire. Raw XADDs from other clients neither set nor refresh it.
	ChannelTTL time.Duration
	// IdempotencyWindow is how long a publish's idempotency key is
	// remembered (PublishOnce). Zero means DefaultIdempotencyWindow.
	IdempotencyWindow time.Duration
}

// Validate reports every problem with cfg at once.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, ErrNoClient)
	}
	if len(cfg.Prefix) > 100 {
		errs = append(errs, errors.New("store: prefix longer than 100 bytes"))
	}
	if cfg.MaxAge < 0 || (cfg.MaxAge > 0 && cfg.MaxAge < time.Millisecond) {
		errs = append(errs, errors.New("store: MaxAge must be zero or at least 1ms"))
	}
	if cfg.ChannelTTL > 0 && cfg.ChannelTTL < time.Millisecond {
		errs = append(errs, errors.New("store: ChannelTTL must be at least 1ms, zero or negative"))
	}
	if cfg.IdempotencyWindow < 0 || (cfg.IdempotencyWindow > 0 && cfg.IdempotencyWindow < time.Millisecond) {
		errs = append(errs, errors.New("store: IdempotencyWindow must be zero or at least 1ms"))
	}
	return errors.Join(errs...)
}

func (cfg Config) withDefaults() Config {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = DefaultMaxLen
	}
	if cfg.ChannelTTL == 0 {
		cfg.ChannelTTL = DefaultChannelTTL
	}
	if cfg.IdempotencyWindow == 0 {
		cfg.IdempotencyWindow = DefaultIdempotencyWindow
	}
	return cfg
}

// Store reads and writes channel streams. It is safe for concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	maxLen int64
	maxAge time.Duration // zero: none
	ttl    time.Duration // negative: none
	window time.Duration // of idempotency keys
}

// New returns a Store for cfg.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Store{rdb: cfg.Client, prefix: cfg.Prefix, maxLen: cfg.MaxLen, maxAge: cfg.MaxAge, ttl: cfg.ChannelTTL,
		window: cfg.IdempotencyWindow}, nil
}

// Key returns the stream key of channel.
func (s *Store) Key(channel string) string { return s.prefix + channel }

// Prefix returns the key prefix of channel streams.
func (s *Store) Prefix() string { return s.prefix }

// Client returns the Redis client the store uses.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Publish appends m to channel and returns its entry ID, in a round trip
// of its own; a Publisher shares round trips between concurrent publishes.
func (s *Store) Publish(ctx context.Context, channel string, m Message) (protocol.ID, error) {
	if err := validate(channel, m); err != nil {
		return protocol.ID{}, err
	}
	if !s.upkept() {
		return s.added(channel, s.rdb.XAdd(ctx, s.addArgs(channel, &m)))
	}
	pipe := s.rdb.Pipeline()
	cmd := pipe.XAdd(ctx, s.addArgs(channel, &m))
	s.upkeep(ctx, pipe, channel, time.Now())
	pipe.Exec(ctx)
	return s.added(channel, cmd)
}

func validate(channel string, m Message) error {
	if err := protocol.ValidateChannel(channel); err != nil {
		return err
	}
	return protocol.ValidateEvent(m.Event)
}

// addArgs is the XADD of m, trimmed to the store's length bound or, without
// one, to its age bound: XADD takes only one of them.
func (s *Store) addArgs(channel string, m *Message) *redis.XAddArgs {
	args := &redis.XAddArgs{Stream: s.Key(channel), Values: m.values()}
	switch {
	case s.maxLen > 0:
		args.MaxLen, args.Approx = s.maxLen, true
	case s.maxAge > 0:
		args.MinID, args.Approx = s.minID(time.Now()), true
	}
	return args
}

// upkept reports whether publishes carry commands beside the XADD.
func (s *Store) upkept() bool {
	return s.ttl > 0 || (s.maxLen > 0 && s.maxAge > 0)
}

// upkeep queues, after a channel's XADDs in one pipeline, what bounds its
// stream beyond them: the age bound when the XADD carried the length bound,
// and the idle expiry. Their failure only leaves a stream longer or longer
// lived; the XADD's own reply says whether the publish happened.
func (s *Store) upkeep(ctx context.Context, pipe redis.Pipeliner, channel string, now time.Time) {
	key := s.Key(channel)
	if s.maxLen > 0 && s.maxAge > 0 {
		pipe.XTrimMinIDApprox(ctx, key, s.minID(now), 0)
	}
	if s.ttl > 0 {
		pipe.PExpire(ctx, key, s.ttl)
	}
}

// minID is the oldest entry ID the age bound keeps at now.
func (s *Store) minID(now time.Time) string {
	return protocol.ID{Ms: uint64(max(now.Add(-s.maxAge).UnixMilli(), 0))}.String()
}

// added reads the entry ID an XADD returned.
func (s *Store) added(channel string, cmd *redis.StringCmd) (id protocol.ID, err error) {
	defer wrap(&err, "failed to publish")
	raw, err := cmd.Result()
	if isReply(err) {
		return protocol.ID{}, unreadable(channel, err)
	}
	if err != nil {
		return protocol.ID{}, err
	}
	return protocol.ParseID(raw)
}

// Latest returns the ID of the newest entry of channel, or the zero ID when
// the stream is empty or missing.
func (s *Store) Latest(ctx context.Context, channel string) (id protocol.ID, err error) {
	defer wrap(&err, "failed to read the latest entry")
	msgs, err := s.rdb.XRevRangeN(ctx, s.Key(channel), "+", "-", 1).Result()
	if isReply(err) {
		return protocol.ID{}, unreadable(channel, err)
	}
	if err != nil || len(msgs) == 0 {
		return protocol.ID{}, err
	}
	return protocol.ParseID(msgs[0].ID)
}

func wrap(err *error, msg string) {
	if *err != nil && !errors.Is(*err, protocol.ErrInvalidChannel) && !errors.Is(*err, protocol.ErrInvalidEvent) && !errors.Is(*err, ErrUnreadable) {
		*err = fmt.Errorf("store: %s: %w", msg, *err)
	}
}

// Before returns the position just before the newest n entries of
// channel: reading after it yields them. It is the zero ID when the stream
// holds n entries or fewer, or cannot be read (the read that follows says
// why).
func (s *Store) Before(ctx context.Context, channel string, n int) (protocol.ID, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.Key(channel), "+", "-", int64(n+1)).Result()
	if err != nil || len(msgs) <= n {
		return protocol.ID{}, nil
	}
	return protocol.ParseID(msgs[n].ID)
}

// Ping reports whether Redis answers: in a Redis Cluster, every primary,
// since each holds the channels of its slots. It returns when ctx ends at
// the latest: go-redis bounds a command by its own read timeout, not the
// context's deadline, and a Redis that is paused (or a network that drops
// packets) would hold a readiness probe for seconds, past a load
// balancer's check timeout.
func (s *Store) Ping(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.ping(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("store: no answer to PING: %w", ctx.Err())
	}
}

func (s *Store) ping(ctx context.Context) error {
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			if err := c.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("%s: %w", c.Options().Addr, err)
			}
			return nil
		})
	}
	return s.rdb.Ping(ctx).Err()
}
