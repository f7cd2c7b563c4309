package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// DefaultIdempotencyWindow is how long an idempotency key is remembered:
// longer than any publisher's retries take.
const DefaultIdempotencyWindow = 10 * time.Minute

// ErrIdempotentChannel refuses an idempotent publish to a channel whose
// stream key no record could share a Redis Cluster slot with: one with a
// lone '}' (IdempotencyRecord).
var ErrIdempotentChannel = errors.New("store: an idempotent publish needs a channel without a lone '}'")

// idempotentAdd appends an entry unless its idempotency record says it was
// appended before, and records it, in one step of Redis: a retry of a
// publish stores nothing and answers the first one's ID, on any node. The
// record is a string key in the stream's slot (IdempotencyRecord), so the
// script holds on a Redis Cluster too.
//
//	KEYS[1] the stream, KEYS[2] the record
//	ARGV[1] the window in milliseconds, ARGV[2…] XADD's arguments after the key
//	returns {entry ID, 1 if it was a duplicate else 0}
//
// Publishers that XADD themselves can call it the same way
// (docs/PROTOCOL.md, Publishing), so that their retries and the node's
// publishes with the same key deduplicate against each other.
const idempotentAddScript = `local first = redis.call('GET', KEYS[2])
if first then return {first, 1} end
local id = redis.call('XADD', KEYS[1], unpack(ARGV, 2))
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return {id, 0}`

var idempotentAdd = redis.NewScript(idempotentAddScript)

// IdempotencyRecord is the key that remembers a publish to channel with
// idempotency key: <prefix>{<stream key>}:idem:<hex SHA-256 of
// "<channel>\n<key>">, the braces making Redis Cluster hash it as it
// hashes the stream, so both lie in one slot (push:{push:news}:idem:… for
// the stream push:news). Where the stream's key has a hash tag of its own,
// the record's braces hold that tag; where the prefix has one, the record
// is <prefix>idem:<hex>. The channel is hashed in, so one key on two
// channels is two publishes. A stream key no record can share a slot with
// (a lone '}', a prefix with a brace but no tag) is ErrIdempotentChannel.
func (s *Store) IdempotencyRecord(channel, key string) (string, error) {
	sum := sha256.Sum256([]byte(channel + "\n" + key))
	id := hex.EncodeToString(sum[:])
	if strings.ContainsAny(s.prefix, "{}") {
		if hashTag(s.prefix) == s.prefix {
			return "", ErrIdempotentChannel
		}
		return s.prefix + "idem:" + id, nil
	}
	tag := hashTag(s.Key(channel))
	if strings.Contains(tag, "}") {
		return "", ErrIdempotentChannel
	}
	return s.prefix + "{" + tag + "}:idem:" + id, nil
}

// onceArgs are the keys and arguments of idempotentAdd for m.
func (s *Store) onceArgs(channel string, m *Message, key string) ([]string, []any, error) {
	record, err := s.IdempotencyRecord(channel, key)
	if err != nil {
		return nil, nil, err
	}
	a := s.addArgs(channel, m)
	argv := []any{strconv.FormatInt(s.window.Milliseconds(), 10)}
	switch {
	case a.MaxLen > 0:
		argv = append(argv, "MAXLEN", "~", a.MaxLen)
	case a.MinID != "":
		argv = append(argv, "MINID", "~", a.MinID)
	}
	argv = append(argv, "*")
	argv = append(argv, a.Values.([]any)...)
	return []string{a.Stream, record}, argv, nil
}

// addedOnce reads idempotentAdd's answer.
func (s *Store) addedOnce(channel string, cmd *redis.Cmd) (id protocol.ID, dup bool, err error) {
	defer wrap(&err, "failed to publish")
	res, err := cmd.Slice()
	if isReply(err) {
		return protocol.ID{}, false, unreadable(channel, err)
	}
	if err != nil {
		return protocol.ID{}, false, err
	}
	raw, ok := res[0].(string)
	n, _ := res[1].(int64)
	if len(res) != 2 || !ok {
		return protocol.ID{}, false, fmt.Errorf("unexpected answer %v", res)
	}
	id, err = protocol.ParseID(raw)
	return id, n == 1, err
}

// PublishOnce appends m to channel unless a publish with the same
// idempotency key reached it within the window, in a round trip of its
// own; dup reports that one did, and id is then the first one's.
func (s *Store) PublishOnce(ctx context.Context, channel string, m Message, key string) (id protocol.ID, dup bool, err error) {
	if err := validateOnce(channel, m, key); err != nil {
		return protocol.ID{}, false, err
	}
	keys, argv, err := s.onceArgs(channel, &m, key)
	if err != nil {
		return protocol.ID{}, false, err
	}
	pipe := s.rdb.Pipeline()
	cmd := idempotentAdd.Eval(ctx, pipe, keys, argv...)
	if s.upkept() {
		s.upkeep(ctx, pipe, channel, time.Now())
	}
	pipe.Exec(ctx)
	return s.addedOnce(channel, cmd)
}

func validateOnce(channel string, m Message, key string) error {
	if err := validate(channel, m); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("%w: empty", protocol.ErrInvalidIdempotencyKey)
	}
	return protocol.ValidateIdempotencyKey(key)
}
