//go:build unix

package tests

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/rediscluster"
	"github.com/pushcluster/pushcluster/internal/testredis"
	"github.com/pushcluster/pushcluster/pkg/node"
)

// A Sentinel failover (SENTINEL FAILOVER: the old primary stays up and
// becomes a replica, the case where a pub/sub connection can stall
// unnoticed) during steady publishing: the nodes follow the new primary,
// their probes heal the wake-up path, and every client gets every entry
// the log holds exactly once, in order, with a gap after any it got that
// the failover lost.
func TestRedisSentinelFailover(t *testing.T) {
	t.Parallel()
	if err := rediscluster.Available(); err != nil {
		t.Skipf("no Sentinel: %v (apt-get install redis-server redis-sentinel redis-tools)", err)
	}
	g, err := rediscluster.StartSentinel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: rediscluster.MasterName, SentinelAddrs: g.Addrs(),
		MaxRetries: -1}) // the publisher writes each payload once: see onceClient
	t.Cleanup(func() { rdb.Close() })
	c := &cluster{t: t, prefix: testredis.Prefix(t), rdb: rdb,
		redis: node.RedisConfig{Sentinel: g.Addrs(), Master: rediscluster.MasterName}}
	channels := []string{"s0", "s1", "s2"}
	a, b := c.start("a"), c.start("b")
	waitShardsNotified(t, a, 1)
	waitShardsNotified(t, b, 1)
	sse := openSSE(t, sseURL(a, channels...), "")
	sse.waitWelcome()
	ws := dialWS(t, b, "")
	subscribeWS(ws, channels)

	pub := startSteady(t, c, channels, 5*time.Millisecond)
	pub.waitSent(100)
	old, _ := g.Master(context.Background())
	next, err := g.Failover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pub.waitSent(200)
	pub.halt()
	for _, n := range []*testNode{a, b} {
		waitShardsNotified(t, n, 1)
	}
	log := pub.logged()
	lost := pub.lost(log)
	gaps := waitExactlyOnce(t, "SSE on a", log, func() map[string][]string { return sseReceived(sse) })
	gaps += waitExactlyOnce(t, "WebSocket on b", log, func() map[string][]string { return wsReceived(ws) })
	t.Logf("failover %s → %s: %d publishes acknowledged, %d failed, %d acknowledged and lost; %d gaps; sweeps a=%d b=%d",
		old, next, pub.sent(), pub.failed, len(lost), gaps, a.Hub().Stats().Sweeps, b.Hub().Stats().Sweeps)
}
