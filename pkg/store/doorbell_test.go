package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/logbuf"
	"github.com/pushcluster/pushcluster/internal/testredis"
)

const doorbellWait = 20 * time.Second

// bell records what a doorbell rings.
type bell struct {
	mu    sync.Mutex
	rings map[string]int
	all   atomic.Int64
}

func (b *bell) Ring(ch string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rings[ch]++
}

// Check counts as a ring: either makes the hub look at the channel.
func (b *bell) Check(ch string) { b.Ring(ch) }

func (b *bell) RingAll() { b.all.Add(1) }

func (b *bell) rang(ch string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rings[ch]
}

// logBuffer is a log sink tests can search.
type logBuffer struct{ logbuf.Buffer }

func (l *logBuffer) has(s string) error {
	if !strings.Contains(l.String(), s) {
		return fmt.Errorf("no %q logged yet", s)
	}
	return nil
}

// startDoorbell runs a doorbell on s, stopped when the test ends.
func startDoorbell(t *testing.T, s *Store, logs *logBuffer) (*Doorbell, *bell) {
	t.Helper()
	b := &bell{rings: map[string]int{}}
	cfg := DoorbellConfig{
		Store: s, Node: "n",
		ProbeInterval: 100 * time.Millisecond, PollInterval: 20 * time.Millisecond,
	}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d, err := NewDoorbell(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx, b)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return d, b
}

func waitProven(t *testing.T, d *Doorbell) {
	t.Helper()
	checkFor(t, doorbellWait, func() error {
		if !d.Proven() {
			return fmt.Errorf("doorbell not proven")
		}
		return nil
	})
}

func waitRang(t *testing.T, b *bell, ch string, n int) {
	t.Helper()
	checkFor(t, doorbellWait, func() error {
		if got := b.rang(ch); got < n {
			return fmt.Errorf("%q rang %d times, want %d", ch, got, n)
		}
		return nil
	})
}

// numSub returns how many subscribers the keyspace channel of key has.
func numSub(t *testing.T, rdb redis.UniversalClient, key string) int64 {
	t.Helper()
	name := "__keyspace@0__:" + key
	n, err := rdb.PubSubNumSub(t.Context(), name).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n[name]
}

// A watched channel rings on XADD, once its subscription is confirmed; an
// unwatched one does not. Notifications arrive in order on one connection,
// so a later ring proves an earlier one did not come.
func TestDoorbellRingsWatchedChannels(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Config{})
	d, b := startDoorbell(t, s, nil)
	d.Watch("a")
	waitProven(t, d)
	waitRang(t, b, "a", 1) // the subscription's confirmation rings
	xadd(t, s, "b", "*", "x")
	xadd(t, s, "a", "*", "x")
	waitRang(t, b, "a", 2)
	if n := b.rang("b"); n != 0 {
		t.Errorf("unwatched channel rang %d times", n)
	}

	d.Unwatch("a")
	checkFor(t, doorbellWait, func() error {
		if n := numSub(t, s.rdb, s.Key("a")); n != 0 {
			return fmt.Errorf("still %d subscribers of a", n)
		}
		return nil
	})
	before := b.rang("a")
	xadd(t, s, "a", "*", "after unwatch")
	d.Watch("c")
	waitRang(t, b, "c", 1)
	xadd(t, s, "c", "*", "x")
	waitRang(t, b, "c", 2)
	if n := b.rang("a"); n != before {
		t.Errorf("a rang %d times after Unwatch", n-before)
	}
}

// Where notifications cannot be enabled (CONFIG refused, as on a managed
// Redis), the doorbell polls, ringing every channel; once someone enables
// them its probe proves them and it stops polling.
func TestDoorbellPollsWithoutNotifications(t *testing.T) {
	t.Parallel()
	srv := testredis.Own(t)
	admin := srv.Client(t)
	if err := admin.Do(t.Context(), "ACL", "SETUSER", "limited", "on", ">secret", "~*", "&*", "+@all", "-config").Err(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "limited", Password: "secret"})
	t.Cleanup(func() { rdb.Close() })
	s := newTestStore(t, Config{Client: rdb})
	d, b := startDoorbell(t, s, nil)
	d.Watch("a")
	checkFor(t, doorbellWait, func() error {
		if n := b.all.Load(); n < 5 {
			return fmt.Errorf("%d polls", n)
		}
		return nil
	})
	if d.Proven() {
		t.Fatal("proven although notifications are off")
	}
	if flags := admin.ConfigGet(t.Context(), "notify-keyspace-events").Val()["notify-keyspace-events"]; flags != "" {
		t.Fatalf("notify-keyspace-events %q: CONFIG was not refused", flags)
	}

	if err := admin.ConfigSet(t.Context(), "notify-keyspace-events", "Kt").Err(); err != nil {
		t.Fatal(err)
	}
	waitProven(t, d)
	n := b.rang("a")
	xadd(t, s, "a", "*", "x")
	waitRang(t, b, "a", n+1)
}

// A dropped pub/sub connection rings every channel (wake-ups sent while it
// was down are lost), and rings resume once go-redis resubscribes.
func TestDoorbellRingsAllAfterReconnect(t *testing.T) {
	t.Parallel()
	srv := testredis.Own(t)
	admin := srv.Client(t)
	s := newTestStore(t, Config{Client: srv.Client(t)})
	d, b := startDoorbell(t, s, nil)
	d.Watch("a")
	waitProven(t, d)
	waitRang(t, b, "a", 1)
	before := b.all.Load()
	if n, err := admin.ClientKillByFilter(t.Context(), "TYPE", "pubsub").Result(); err != nil || n == 0 {
		t.Fatalf("CLIENT KILL TYPE pubsub: killed %d: %v", n, err)
	}
	checkFor(t, doorbellWait, func() error {
		if n := b.all.Load(); n <= before {
			return fmt.Errorf("no RingAll since the connection was killed")
		}
		return nil
	})
	checkFor(t, doorbellWait, func() error {
		if numSub(t, admin, s.Key("a")) == 0 {
			return fmt.Errorf("not resubscribed yet")
		}
		return nil
	})
	n := b.rang("a")
	xadd(t, s, "a", "*", "x")
	waitRang(t, b, "a", n+1)
	waitProven(t, d)
}

// Notifications switched off under a proven doorbell (a restart or a
// failover to a Redis without them) fail its probe: it polls, enables them
// again and is proven again.
func TestDoorbellProbeRestoresNotifications(t *testing.T) {
	t.Parallel()
	srv := testredis.Own(t)
	admin := srv.Client(t)
	logs := &logBuffer{}
	s := newTestStore(t, Config{Client: srv.Client(t)})
	d, _ := startDoorbell(t, s, logs)
	waitProven(t, d)
	if err := admin.ConfigSet(t.Context(), "notify-keyspace-events", "").Err(); err != nil {
		t.Fatal(err)
	}
	checkFor(t, doorbellWait, func() error { return logs.has("doorbell probe lost") })
	waitProven(t, d)
	flags := admin.ConfigGet(t.Context(), "notify-keyspace-events").Val()["notify-keyspace-events"]
	if !strings.Contains(flags, "K") || !strings.ContainsAny(flags, "tA") {
		t.Errorf("notify-keyspace-events %q after the probe failed, want K and t", flags)
	}
}
