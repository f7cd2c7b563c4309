package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Defaults for Config.
const (
	DefaultPrefix = "push:"
	DefaultMaxLen = 10_000
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
// failed connection), which concerns only the command that got it.
func isReply(err error) bool {
	var re redis.Error
	return err != nil && err != redis.Nil && errors.As(err, &re)
}

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
	return errors.Join(errs...)
}

func (cfg Config) withDefaults() Config {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = DefaultMaxLen
	}
	return cfg
}

// Store reads and writes channel streams. It is safe for concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	maxLen int64
}

// New returns a Store for cfg.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Store{rdb: cfg.Client, prefix: cfg.Prefix, maxLen: cfg.MaxLen}, nil
}

// Key returns the stream key of channel.
func (s *Store) Key(channel string) string { return s.prefix + channel }

// Prefix returns the key prefix of channel streams.
func (s *Store) Prefix() string { return s.prefix }

// Client returns the Redis client the store uses.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Publish appends m to channel and returns its entry ID, in a round trip
// of its own; a Publisher shares round trips between concurrent publishes.
func (s *Store) Publish(ctx context.Context, channel string, m Message) (ID, error) {
	if err := validate(channel, m); err != nil {
		return ID{}, err
	}
	return s.added(channel, s.rdb.XAdd(ctx, s.addArgs(channel, &m)))
}

func validate(channel string, m Message) error {
	if err := ValidateChannel(channel); err != nil {
		return err
	}
	return ValidateEvent(m.Event)
}

// addArgs is the XADD of m, trimmed to the store's bound.
func (s *Store) addArgs(channel string, m *Message) *redis.XAddArgs {
	args := &redis.XAddArgs{Stream: s.Key(channel), Values: m.values()}
	if s.maxLen > 0 {
		args.MaxLen, args.Approx = s.maxLen, true
	}
	return args
}

// added reads the entry ID an XADD returned.
func (s *Store) added(channel string, cmd *redis.StringCmd) (id ID, err error) {
	defer wrap(&err, "failed to publish")
	raw, err := cmd.Result()
	if isReply(err) {
		return ID{}, unreadable(channel, err)
	}
	if err != nil {
		return ID{}, err
	}
	return ParseID(raw)
}

// Latest returns the ID of the newest entry of channel, or the zero ID when
// the stream is empty or missing.
func (s *Store) Latest(ctx context.Context, channel string) (id ID, err error) {
	defer wrap(&err, "failed to read the latest entry")
	msgs, err := s.rdb.XRevRangeN(ctx, s.Key(channel), "+", "-", 1).Result()
	if isReply(err) {
		return ID{}, unreadable(channel, err)
	}
	if err != nil || len(msgs) == 0 {
		return ID{}, err
	}
	return ParseID(msgs[0].ID)
}

func wrap(err *error, msg string) {
	if *err != nil && !errors.Is(*err, ErrInvalidChannel) && !errors.Is(*err, ErrInvalidEvent) && !errors.Is(*err, ErrUnreadable) {
		*err = fmt.Errorf("store: %s: %w", msg, *err)
	}
}
