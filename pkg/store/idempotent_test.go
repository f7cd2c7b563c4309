package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// A key published twice to one channel stores one entry and answers its
// ID twice; the same key on another channel is another publish; after the
// window the key is forgotten. Through the store and the publisher alike.
func TestPublishOnce(t *testing.T) {
	s := newTestStore(t, Config{IdempotencyWindow: 300 * time.Millisecond})
	p, err := NewPublisher(PublisherConfig{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	runPublisher(t, p)
	ctx := context.Background()
	for name, once := range map[string]func(channel, key string) (protocol.ID, bool, error){
		"store":     func(ch, k string) (protocol.ID, bool, error) { return s.PublishOnce(ctx, ch, Message{Data: "x"}, k) },
		"publisher": func(ch, k string) (protocol.ID, bool, error) { return p.PublishOnce(ctx, ch, Message{Data: "x"}, k) },
	} {
		ch := "once-" + name
		first, dup, err := once(ch, "k1")
		if err != nil || dup {
			t.Fatalf("%s: first publish: %v %v", name, dup, err)
		}
		again, dup, err := once(ch, "k1")
		if err != nil || !dup || again != first {
			t.Fatalf("%s: repeat: %v dup %v %v, want %v", name, again, dup, err, first)
		}
		if _, dup, err := once(ch+"-other", "k1"); err != nil || dup {
			t.Fatalf("%s: the key on another channel: dup %v %v", name, dup, err)
		}
		if n := s.rdb.XLen(ctx, s.Key(ch)).Val(); n != 1 {
			t.Fatalf("%s: %d entries, want 1", name, n)
		}
		time.Sleep(400 * time.Millisecond) // past the window: what is tested is that it ends
		later, dup, err := once(ch, "k1")
		if err != nil || dup || later == first {
			t.Fatalf("%s: after the window: %v dup %v %v", name, later, dup, err)
		}
	}
}

// Concurrent publishes with one key store one entry, and every one of
// them answers its ID.
func TestPublishOnceConcurrent(t *testing.T) {
	s := newTestStore(t, Config{})
	p, _ := NewPublisher(PublisherConfig{Store: s})
	runPublisher(t, p)
	var wg sync.WaitGroup
	ids := make([]protocol.ID, 50)
	dups := make([]bool, 50)
	for i := range ids {
		wg.Go(func() {
			var err error
			ids[i], dups[i], err = p.PublishOnce(context.Background(), "c", Message{Data: "x"}, "same")
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	firsts := 0
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatalf("answers %v and %v", ids[0], ids[i])
		}
		if !dups[i] {
			firsts++
		}
	}
	if firsts != 1 || s.rdb.XLen(context.Background(), s.Key("c")).Val() != 1 {
		t.Fatalf("%d publishes not duplicates, %d entries; want 1 and 1", firsts, s.rdb.XLen(context.Background(), s.Key("c")).Val())
	}
}

// The record of a key lies in its stream's slot, whatever the channel's
// name, so the script holds on a Redis Cluster; a channel whose key has a
// lone '}' has no such key and is refused.
func TestIdempotencyRecordSharesTheSlot(t *testing.T) {
	for _, prefix := range []string{"push:", "{app}:", "p{q}r:"} {
		s := &Store{prefix: prefix}
		for _, ch := range []string{"news", "a{b}c", "{x}", "a{b", "é", "inbox#alice", "x{y}z{w}"} {
			rec, err := s.IdempotencyRecord(ch, "k")
			if err != nil {
				t.Fatalf("%q%q: %v", prefix, ch, err)
			}
			if Slot(rec) != Slot(s.Key(ch)) {
				t.Errorf("record %q is in slot %d, its stream %q in %d", rec, Slot(rec), s.Key(ch), Slot(s.Key(ch)))
			}
		}
	}
	for _, sc := range []struct{ prefix, channel string }{
		{"push:", "a}b"}, {"push:", "}"}, {"push:", "a{}b"}, {"push:", "{}"}, {"a{", "news"}, {"}", "news"},
	} {
		s := &Store{prefix: sc.prefix}
		if _, err := s.IdempotencyRecord(sc.channel, "k"); !errors.Is(err, ErrIdempotentChannel) {
			t.Errorf("%q%q: %v, want ErrIdempotentChannel", sc.prefix, sc.channel, err)
		}
	}
}

// Keys that are too long or hold control characters are refused.
func TestPublishOnceBadKeys(t *testing.T) {
	s := newTestStore(t, Config{})
	for _, k := range []string{"", "a\x00b", "line\nbreak", string(make([]byte, protocol.MaxIdempotencyKeyLen+1)), "\xff"} {
		if _, _, err := s.PublishOnce(context.Background(), "c", Message{Data: "x"}, k); !errors.Is(err, protocol.ErrInvalidIdempotencyKey) {
			t.Errorf("key %q: %v", k, err)
		}
	}
}

// On a Redis Cluster, a key deduplicates on every shard.
func TestPublishOnceOnCluster(t *testing.T) {
	t.Parallel()
	cc := testCluster(t)
	s := newTestStore(t, Config{Client: cc})
	for _, ch := range channelsOnShards(t, s, cc) {
		first, dup, err := s.PublishOnce(t.Context(), ch, Message{Data: "x"}, "k")
		if err != nil || dup {
			t.Fatalf("%s: %v %v", ch, dup, err)
		}
		again, dup, err := s.PublishOnce(t.Context(), ch, Message{Data: "x"}, "k")
		if err != nil || !dup || again != first {
			t.Fatalf("%s: repeat %v %v %v", ch, again, dup, err)
		}
	}
}

// A raw publisher calls the same script and deduplicates against the
// node's publishes (docs/PROTOCOL.md shows it with redis-cli).
func TestPublishOnceFromARawClient(t *testing.T) {
	s := newTestStore(t, Config{})
	ctx := context.Background()
	first, _, err := s.PublishOnce(ctx, "raw", Message{Data: "from the node"}, "order-17")
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := s.IdempotencyRecord("raw", "order-17")
	res, err := s.rdb.Eval(ctx, idempotentAddScript, []string{s.Key("raw"), rec}, "600000", "*", "data", "from a script").Slice()
	if err != nil || fmt.Sprint(res[0]) != first.String() || res[1] != int64(1) {
		t.Fatalf("the script answered %v %v, want %v as a duplicate", res, err, first)
	}
	if n := s.rdb.XLen(ctx, s.Key("raw")).Val(); n != 1 {
		t.Fatalf("%d entries", n)
	}
}
