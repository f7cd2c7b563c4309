//go:build unix

package tests

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pushcluster/pushcluster/internal/rediscluster"
	"github.com/pushcluster/pushcluster/internal/testredis"
	"github.com/pushcluster/pushcluster/pkg/node"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// startRedisCluster starts a Redis Cluster of three primaries and three
// replicas for this test, and a cluster of nodes on it.
func startRedisCluster(t *testing.T) (*cluster, *rediscluster.Cluster) {
	t.Helper()
	if err := rediscluster.Available(); err != nil {
		t.Skipf("no Redis Cluster: %v (apt-get install redis-server redis-sentinel redis-tools)", err)
	}
	rc, err := rediscluster.StartCluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	cc := rc.Client()
	t.Cleanup(func() { cc.Close() })
	c := &cluster{t: t, redis: node.RedisConfig{Cluster: rc.Seeds()[:2]}, prefix: testredis.Prefix(t), rdb: cc}
	return c, rc
}

// spreadChannels returns perShard channel names for each primary.
func spreadChannels(t *testing.T, c *cluster, rc *rediscluster.Cluster, perShard int) (channels []string, owner map[string]string) {
	t.Helper()
	primaries, err := rc.Primaries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	owner = map[string]string{}
	count := map[string]int{}
	for i := 0; len(channels) < perShard*len(primaries); i++ {
		ch := fmt.Sprintf("ch%d", i)
		p, err := rc.Owner(context.Background(), store.Slot(c.prefix+ch))
		if err != nil {
			t.Fatal(err)
		}
		if count[p] < perShard {
			count[p]++
			owner[ch] = p
			channels = append(channels, ch)
		}
	}
	return channels, owner
}

// subscribeWS subscribes w to every channel and waits for the replies.
func subscribeWS(w *wsClient, channels []string) {
	for _, ch := range channels {
		w.send(map[string]any{"type": "subscribe", "channel": ch})
	}
	w.waitType("subscribed", len(channels))
}

// Nodes on a Redis Cluster deliver every channel, whichever shard owns it,
// to SSE and WebSocket clients on other nodes, and clients resume on
// another node from their last IDs; each node proves its wake-up path on
// all three shards, with a probe key on each.
func TestRedisClusterDeliveryAndResume(t *testing.T) {
	t.Parallel()
	c, rc := startRedisCluster(t)
	channels, _ := spreadChannels(t, c, rc, 2)
	a, b := c.start("a"), c.start("b")
	for _, n := range []*testNode{a, b} {
		r := waitShardsNotified(t, n, 3)
		for _, sh := range r.Shards {
			if sh.NotifyKeyspaceEvents == "" {
				t.Errorf("%s: shard %s reports no notify-keyspace-events", n.Name(), sh.Shard)
			}
		}
	}
	sse := openSSE(t, sseURL(a, channels...), "")
	sse.waitWelcome()
	ws := dialWS(t, b, "")
	subscribeWS(ws, channels)

	var want []string
	for i := range 5 {
		for _, ch := range channels {
			if i%2 == 0 {
				want = append(want, c.xaddSeq(ch, i))
			} else {
				msg := fmt.Sprintf("%s/%d", ch, i)
				publish(t, a, map[string]string{"channel": ch, "data": msg})
				want = append(want, msg)
			}
		}
	}
	equalPerChannel(t, "SSE on a", sse.waitData(len(want)), want)
	equalPerChannel(t, "WebSocket on b", ws.waitData(len(want)), want)

	// Both clients leave; more is published; each resumes on the other node.
	last := sse.lastEventID()
	sse.close()
	since := map[string]string{}
	for _, f := range ws.ofType("message") {
		since[f["channel"].(string)] = f["id"].(string)
	}
	ws.close()
	var more []string
	for _, ch := range channels {
		more = append(more, c.xaddSeq(ch, 100))
	}
	sse2 := openSSE(t, sseURL(b, channels...), last)
	ws2 := dialWS(t, a, "")
	for _, ch := range channels {
		ws2.send(map[string]any{"type": "subscribe", "channel": ch, "since": since[ch]})
	}
	equalPerChannel(t, "SSE resumed on b", sse2.waitData(len(more)), more)
	equalPerChannel(t, "WebSocket resumed on a", ws2.waitData(len(more)), more)
	if gaps := len(sse2.named("push.gap")) + len(ws2.ofType("gap")); gaps != 0 {
		t.Errorf("%d gaps, want none", gaps)
	}
}

// A primary killed during steady publishing: its replica takes over, the
// nodes follow the new topology and heal their wake-up path on it (/readyz
// says notify on every shard again), and every client gets every entry the
// log holds exactly once, in order, with a gap after any it got that the
// failover lost.
func TestRedisClusterPrimaryFailover(t *testing.T) {
	t.Parallel()
	c, rc := startRedisCluster(t)
	channels, owner := spreadChannels(t, c, rc, 2)
	a, b := c.start("a"), c.start("b")
	waitShardsNotified(t, a, 3)
	waitShardsNotified(t, b, 3)
	sse := openSSE(t, sseURL(a, channels...), "")
	sse.waitWelcome()
	ws := dialWS(t, b, "")
	subscribeWS(ws, channels)

	pub := startSteady(t, c, channels, 5*time.Millisecond)
	pub.waitSent(100)
	victim := owner[channels[0]]
	promoted, err := rc.KillPrimary(context.Background(), victim)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed primary %s; %s promoted", victim, promoted)
	pub.waitSent(200)
	pub.halt()

	for _, n := range []*testNode{a, b} {
		r := waitShardsNotified(t, n, 3)
		for _, sh := range r.Shards {
			if sh.Shard == victim {
				t.Errorf("%s still lists the killed primary %s", n.Name(), victim)
			}
		}
	}
	log := pub.logged()
	lost := pub.lost(log)
	gaps := waitExactlyOnce(t, "SSE on a", log, func() map[string][]string { return sseReceived(sse) })
	gaps += waitExactlyOnce(t, "WebSocket on b", log, func() map[string][]string { return wsReceived(ws) })
	t.Logf("%d publishes acknowledged, %d failed during the failover, %d acknowledged and lost; %d gaps",
		pub.sent(), pub.failed, len(lost), gaps)
}

// A slot moved between primaries (IMPORTING, MIGRATING, MIGRATE, SETSLOT
// NODE) during steady publishing to a channel in it: the nodes move its
// subscription to the new owner, and nothing is lost, repeated or reported
// as a gap.
func TestRedisClusterSlotMigration(t *testing.T) {
	t.Parallel()
	c, rc := startRedisCluster(t)
	channels, owner := spreadChannels(t, c, rc, 2)
	a, b := c.start("a"), c.start("b")
	waitShardsNotified(t, a, 3)
	waitShardsNotified(t, b, 3)
	sse := openSSE(t, sseURL(a, channels...), "")
	sse.waitWelcome()
	ws := dialWS(t, b, "?"+url.Values{"channel": channels[:1]}.Encode())
	ws.waitType("subscribed", 1)

	moving := channels[0]
	slot := store.Slot(c.prefix + moving)
	var to string
	for _, ch := range channels {
		if owner[ch] != owner[moving] {
			to = owner[ch]
		}
	}
	pub := startSteady(t, c, channels, 5*time.Millisecond)
	pub.waitSent(60)
	err := rc.MigrateSlot(context.Background(), slot, to, func() { pub.waitSent(30) })
	if err != nil {
		t.Fatal(err)
	}
	pub.waitSent(100)
	// A publish to the moved channel after the move, delivered live.
	pub.halt()
	c.xaddSeq(moving, 1_000_000)

	log := pub.logged()
	if gaps := waitExactlyOnce(t, "SSE on a", log, func() map[string][]string { return sseReceived(sse) }); gaps != 0 {
		t.Errorf("SSE: %d gaps, want none", gaps)
	}
	onlyMoving := map[string][]string{moving: log[moving]}
	if gaps := waitExactlyOnce(t, "WebSocket on b", onlyMoving, func() map[string][]string { return wsReceived(ws) }); gaps != 0 {
		t.Errorf("WebSocket: %d gaps, want none", gaps)
	}
	for _, n := range []*testNode{a, b} {
		waitShardsNotified(t, n, 3)
	}
	t.Logf("slot %d of %q moved %s → %s; %d publishes", slot, moving, owner[moving], to, pub.sent())
}

// A shard where the node may not run CONFIG and notifications are off: the
// node polls that shard's channels (they are still delivered), /readyz stays
// ready and names the shard and the setting to change, and the other shards
// are notified as usual. The node's slot function agrees with the cluster's.
func TestRedisClusterNotificationsOffOnOneShard(t *testing.T) {
	t.Parallel()
	c, rc := startRedisCluster(t)
	ctx := context.Background()
	primaries, err := rc.Primaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	managed := primaries[0]
	for _, s := range rc.Servers {
		rule := "+@all"
		if s.Addr == managed {
			rule = "-config"
		}
		cl := s.Client()
		err := cl.Do(ctx, "ACL", "SETUSER", "node", "on", ">pw", "~*", "&*", "+@all", rule).Err()
		cl.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"push:news", "{user1}.a", "a{b}c", "x{}y", c.prefix + "ch1"} {
		if got, want := store.Slot(key), int(c.rdb.ClusterKeySlot(ctx, key).Val()); got != want {
			t.Errorf("Slot(%q) = %d, CLUSTER KEYSLOT says %d", key, got, want)
		}
	}
	c.redis.Username, c.redis.Password = "node", "pw"
	a := c.start("a")
	var r readyAnswer
	checkFor(t, 30*time.Second, func() error {
		r = readyAnswer{}
		getJSON(t, a.base+"/readyz", &r)
		notified := 0
		for _, sh := range r.Shards {
			if sh.Delivery == store.DeliveryNotify {
				notified++
			}
		}
		if !r.Ready || r.Delivery != store.DeliveryPoll || notified != 2 {
			return fmt.Errorf("/readyz %+v", r)
		}
		return nil
	})
	for _, sh := range r.Shards {
		if sh.Shard == managed && (sh.Delivery != store.DeliveryPoll || !strings.Contains(sh.Fix, managed) || !strings.Contains(sh.Fix, `"Kt"`)) {
			t.Errorf("the shard without notifications: %+v", sh)
		}
	}
	channels, _ := spreadChannels(t, c, rc, 1)
	sse := openSSE(t, sseURL(a, channels...), "")
	sse.waitWelcome()
	var want []string
	for _, ch := range channels {
		want = append(want, c.xaddSeq(ch, 0))
	}
	equalPerChannel(t, "SSE", sse.waitData(len(want)), want)
}
