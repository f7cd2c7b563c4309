package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// publishers are the two ways the store publishes: a round trip of its own,
// and a Publisher's shared pipeline.
func publishers(t *testing.T, s *Store) map[string]func(channel string, m Message) (protocol.ID, error) {
	t.Helper()
	p, err := NewPublisher(PublisherConfig{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	runPublisher(t, p)
	return map[string]func(string, Message) (protocol.ID, error){
		"Store": func(ch string, m Message) (protocol.ID, error) { return s.Publish(t.Context(), ch, m) },
		"Publisher": func(ch string, m Message) (protocol.ID, error) {
			return p.Publish(t.Context(), ch, m)
		},
	}
}

// addOld adds n entries stamped two hours ago, as a raw XADD would have.
func addOld(t *testing.T, s *Store, channel string, n int) {
	t.Helper()
	ms := time.Now().Add(-2 * time.Hour).UnixMilli()
	pipe := s.rdb.Pipeline()
	for i := range n {
		pipe.XAdd(t.Context(), &redis.XAddArgs{Stream: s.Key(channel), ID: fmt.Sprintf("%d-%d", ms, i+1), Values: []any{FieldData, "old"}})
	}
	if _, err := pipe.Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// The node's publishes trim entries older than MaxAge, with or without the
// length bound beside it. Trimming is approximate (whole stream nodes of
// 100 entries go at once), so 300 old entries must mostly go.
func TestPublishTrimsByAge(t *testing.T) {
	t.Parallel()
	for _, maxLen := range []int64{DefaultMaxLen, -1} {
		s := newTestStore(t, Config{MaxLen: maxLen, MaxAge: time.Hour})
		for how, publish := range publishers(t, s) {
			ch := fmt.Sprintf("%s.%d", how, maxLen)
			addOld(t, s, ch, 300)
			id, err := publish(ch, Message{Data: "new"})
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := s.rdb.XRange(t.Context(), s.Key(ch), "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) > 101 || msgs[len(msgs)-1].ID != id.String() {
				t.Errorf("%s, max-len %d: %d entries left, the last %s; want at most 101, the last the new %v",
					how, maxLen, len(msgs), msgs[len(msgs)-1].ID, id)
			}
		}
	}
}

// Every publish by the node sets the channel's expiry again; a negative
// ChannelTTL leaves streams without one.
func TestPublishSetsChannelTTL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		ttl     time.Duration
		atLeast time.Duration // the expiry the key must have; 0 for none
	}{
		{0, DefaultChannelTTL - time.Minute},
		{time.Hour, time.Hour - time.Minute},
		{-1, 0},
	}
	for _, tc := range cases {
		s := newTestStore(t, Config{ChannelTTL: tc.ttl})
		for how, publish := range publishers(t, s) {
			ch := fmt.Sprintf("%s.%v", how, tc.ttl)
			for range 2 {
				if _, err := publish(ch, Message{Data: "x"}); err != nil {
					t.Fatal(err)
				}
			}
			ttl, err := s.rdb.PTTL(context.Background(), s.Key(ch)).Result()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.atLeast == 0 && ttl != -1:
				t.Errorf("%s, ChannelTTL %v: key expires in %v, want no expiry", how, tc.ttl, ttl)
			case tc.atLeast > 0 && (ttl < tc.atLeast || ttl > tc.atLeast+time.Minute):
				t.Errorf("%s, ChannelTTL %v: key expires in %v", how, tc.ttl, ttl)
			}
		}
	}
}

func TestConfigValidateRetention(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { rdb.Close() })
	for _, cfg := range []Config{
		{Client: rdb, MaxAge: -time.Second},
		{Client: rdb, MaxAge: time.Microsecond},
		{Client: rdb, ChannelTTL: time.Microsecond},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("MaxAge %v, ChannelTTL %v: valid", cfg.MaxAge, cfg.ChannelTTL)
		}
	}
	if err := (Config{Client: rdb, MaxAge: time.Hour, ChannelTTL: -1}).Validate(); err != nil {
		t.Error(err)
	}
}
