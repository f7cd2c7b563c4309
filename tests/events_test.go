//go:build unix

package tests

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/rediscluster"
	"github.com/pushcluster/pushcluster/internal/testredis"
	"github.com/pushcluster/pushcluster/pkg/events"
	"github.com/pushcluster/pushcluster/pkg/node"
)

// eventsStream names a test's events stream, outside its channel prefix.
func eventsStream(c *cluster) string { return "events-" + c.prefix }

func withEvents(c *cluster, mod ...func(*events.Config)) func(*node.Config) {
	return func(cfg *node.Config) {
		cfg.Events = events.Config{Stream: eventsStream(c), VacateDelay: 300 * time.Millisecond,
			Heartbeat: 200 * time.Millisecond, LostAfter: 2 * time.Second}
		for _, m := range mod {
			m(&cfg.Events)
		}
	}
}

// readEvents returns every entry of the events stream, in order.
func readEvents(t *testing.T, rdb redis.UniversalClient, stream string) []map[string]string {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]map[string]string, len(msgs))
	for i, m := range msgs {
		out[i] = map[string]string{}
		for k, v := range m.Values {
			out[i][k] = fmt.Sprint(v)
		}
	}
	return out
}

func countEvents(evs []map[string]string, typ string, match func(map[string]string) bool) int {
	n := 0
	for _, e := range evs {
		if e["type"] == typ && (match == nil || match(e)) {
			n++
		}
	}
	return n
}

// checkChannelEvents checks that channel's events alternate occupied,
// vacated, … and returns how many times it was occupied, and whether it
// ended vacated.
func checkChannelEvents(t *testing.T, evs []map[string]string, channel string) (occupied int, vacant bool) {
	t.Helper()
	vacant = true
	for _, e := range evs {
		if e["channel"] != channel || !strings.HasPrefix(e["type"], "channel.") {
			continue
		}
		switch e["type"] {
		case "channel.occupied":
			if !vacant {
				t.Fatalf("%s occupied twice in a row: %v", channel, evs)
			}
			vacant = false
			occupied++
		case "channel.vacated":
			if vacant {
				t.Fatalf("%s vacated twice in a row", channel)
			}
			vacant = true
		}
	}
	return occupied, vacant
}

// runPhases runs phases of clients that connect and leave at random over
// two channels across the nodes, each phase ended by a quiet longer than
// the vacate delay, and returns how many connections each channel had.
func runPhases(t *testing.T, nodes []*testNode, phases, clients int) map[string]int {
	per := map[string]int{}
	var mu sync.Mutex
	for range phases {
		var wg sync.WaitGroup
		for i := range clients {
			n := nodes[rand.IntN(len(nodes))]
			ch := []string{"x", "y"}[i%2]
			mu.Lock()
			per[ch]++
			mu.Unlock()
			wg.Go(func() {
				time.Sleep(rand.N(400 * time.Millisecond))
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, "GET", sseURL(n, ch), nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					cancel()
					t.Error(err)
					return
				}
				buf := make([]byte, 512)
				resp.Body.Read(buf) // the welcome: subscribed
				time.Sleep(rand.N(200 * time.Millisecond))
				cancel()
				resp.Body.Close()
			})
		}
		wg.Wait()
		time.Sleep(time.Second) // quiet: every channel vacates
	}
	return per
}

// waitEventCount waits until the stream holds want events of typ.
func waitEventCount(t *testing.T, rdb redis.UniversalClient, stream, typ string, want int, total time.Duration) []map[string]string {
	t.Helper()
	var evs []map[string]string
	checkFor(t, total, func() error {
		evs = readEvents(t, rdb, stream)
		if n := countEvents(evs, typ, nil); n != want {
			return fmt.Errorf("%d %s events, want %d", n, typ, want)
		}
		return nil
	})
	return evs
}

// checkExactlyOnce runs three phases of 100 clients on nodes and checks
// the stream: one occupied and one vacated per channel per phase, one
// connected and one disconnected per connection, one subscription added
// and removed per connection, no event_id twice.
func checkExactlyOnce(t *testing.T, c *cluster, nodes []*testNode) {
	t.Helper()
	const phases, clients = 3, 100
	per := runPhases(t, nodes, phases, clients)
	evs := waitEventCount(t, c.rdb, eventsStream(c), "client.disconnected", phases*clients, 20*time.Second)
	evs = waitEventCount(t, c.rdb, eventsStream(c), "channel.vacated", 2*phases, 10*time.Second)
	for _, ch := range []string{"x", "y"} {
		occ, vacant := checkChannelEvents(t, evs, ch)
		if occ != phases || !vacant || per[ch] == 0 {
			t.Errorf("channel %s: occupied %d times (%d connections over %d phases), ends vacant %v", ch, occ, per[ch], phases, vacant)
		}
	}
	for typ, want := range map[string]int{
		"client.connected": phases * clients, "client.disconnected": phases * clients,
		"subscription.added": phases * clients, "subscription.removed": phases * clients,
	} {
		if n := countEvents(evs, typ, nil); n != want {
			t.Errorf("%d %s events, want %d", n, typ, want)
		}
	}
	seen := map[string]bool{}
	for _, e := range evs {
		if e["event_id"] == "" || seen[e["event_id"]] {
			t.Fatalf("event_id %q missing or repeated: %v", e["event_id"], e)
		}
		seen[e["event_id"]] = true
		if e["type"] == "client.disconnected" && e["reason"] != events.ReasonClosed {
			t.Errorf("a client that left: reason %q", e["reason"])
		}
		if e["type"] == "client.connected" && (e["client"] == "" || e["transport"] != "sse" || e["node"] == "" || e["time"] == "") {
			t.Errorf("a connection's event lacks fields: %v", e)
		}
	}
}

// 100 clients connecting and leaving at random over two channels across
// three nodes give exactly one occupied and one vacated per transition,
// cluster-wide, and one connected and disconnected per connection.
func TestLifecycleEventsExactlyOnce(t *testing.T) {
	c := newCluster(t)
	nodes := []*testNode{c.start("a", withEvents(c)), c.start("b", withEvents(c)), c.start("c", withEvents(c))}
	checkExactlyOnce(t, c, nodes)
}

// The same on a Redis Cluster: every key of the events shares the
// stream's slot, so each transition is one script on one shard.
func TestLifecycleEventsOnRedisCluster(t *testing.T) {
	c, _ := startRedisCluster(t)
	nodes := []*testNode{c.start("a", withEvents(c)), c.start("b", withEvents(c)), c.start("c", withEvents(c))}
	checkExactlyOnce(t, c, nodes)
}

// And through Sentinel.
func TestLifecycleEventsThroughSentinel(t *testing.T) {
	if err := rediscluster.Available(); err != nil {
		t.Skipf("no Sentinel: %v", err)
	}
	g, err := rediscluster.StartSentinel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: rediscluster.MasterName, SentinelAddrs: g.Addrs()})
	t.Cleanup(func() { rdb.Close() })
	c := &cluster{t: t, prefix: testredis.Prefix(t), rdb: rdb,
		redis: node.RedisConfig{Sentinel: g.Addrs(), Master: rediscluster.MasterName}}
	nodes := []*testNode{c.start("a", withEvents(c)), c.start("b", withEvents(c)), c.start("c", withEvents(c))}
	checkExactlyOnce(t, c, nodes)
}

// A node SIGKILLed with the only subscribers of a channel: the survivors
// report each of its clients disconnected (node_lost), their
// subscriptions removed and the channel vacated, once, as soon as the
// gossip finds it dead (a's own silence bound, a minute here, plays no
// part); restarted under its name, the node reports nothing again.
func TestLifecycleEventsNodeKilled(t *testing.T) {
	c := newCluster(t)
	a := c.startMember("a", nil, withEvents(c, func(ec *events.Config) { ec.LostAfter = time.Minute }))
	stream := eventsStream(c)
	p := c.startProcess("p", []string{a.Cluster().GossipAddr()}, "-events-stream", stream, "-vacate-delay", "300ms")
	wantMembers(t, a, map[string]string{"a": "alive", "p": "alive"})
	var streams []*sseStream
	for range 5 {
		s := openSSE(t, sseURL(p.testNode, "only-p"), "")
		s.waitWelcome()
		streams = append(streams, s)
	}
	onA := openSSE(t, sseURL(a, "shared"), "")
	onA.waitWelcome()
	waitEventCount(t, c.rdb, stream, "client.connected", 6, 10*time.Second)
	p.signal(syscall.SIGKILL)
	p.cmd.Wait()
	killed := time.Now()
	evs := waitEventCount(t, c.rdb, stream, "client.disconnected", 5, 20*time.Second)
	took := time.Since(killed)
	lost := func(e map[string]string) bool { return e["reason"] == events.ReasonNodeLost && e["node"] == "p" }
	if n := countEvents(evs, "client.disconnected", lost); n != 5 {
		t.Errorf("%d node_lost disconnects from p, want 5", n)
	}
	if n := countEvents(evs, "subscription.removed", lost); n != 5 {
		t.Errorf("%d node_lost subscription ends, want 5", n)
	}
	occ, vacant := checkChannelEvents(t, evs, "only-p")
	if occ != 1 || !vacant || countEvents(evs, "channel.vacated", lost) != 1 {
		t.Errorf("only-p: occupied %d, vacant %v, node_lost vacates %d", occ, vacant, countEvents(evs, "channel.vacated", lost))
	}
	if occ, vacant := checkChannelEvents(t, evs, "shared"); occ != 1 || vacant {
		t.Errorf("a's channel: occupied %d, vacant %v", occ, vacant)
	}
	t.Logf("reported lost %v after the kill", took)

	before := len(readEvents(t, c.rdb, stream))
	p.start() // the same name: it must not report its old clients again
	time.Sleep(2 * time.Second)
	after := readEvents(t, c.rdb, stream)
	if len(after) != before {
		t.Fatalf("the restarted node added %d events: %v", len(after)-before, after[before:])
	}
	for _, s := range streams {
		s.close()
	}
}

// The events stream must not be a channel's stream.
func TestEventsStreamOutsideThePrefix(t *testing.T) {
	c := newCluster(t)
	_, err := node.New(node.Config{RedisURL: c.redisURL, Prefix: c.prefix, Name: "x",
		Events: events.Config{Stream: c.prefix + "events"}})
	if err == nil || !strings.Contains(err.Error(), "outside the channel prefix") {
		t.Fatalf("node.New with the stream inside the prefix: %v", err)
	}
}
