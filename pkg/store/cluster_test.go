package store

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/rediscluster"
)

var (
	clusterOnce sync.Once
	sharedRC    *rediscluster.Cluster
	clusterErr  error
)

// testCluster returns a Redis Cluster shared by this package's tests (each
// uses its own prefix), started on first use and stopped by TestMain.
func testCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	if err := rediscluster.Available(); err != nil {
		t.Skipf("no Redis Cluster: %v", err)
	}
	clusterOnce.Do(func() { sharedRC, clusterErr = rediscluster.StartCluster(context.Background()) })
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	cc := sharedRC.Client()
	t.Cleanup(func() { cc.Close() })
	return cc
}

// channelsOnShards returns one channel per primary of the cluster.
func channelsOnShards(t *testing.T, s *Store, cc *redis.ClusterClient) []string {
	t.Helper()
	topo, err := loadTopology(t.Context(), cc)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	seen := map[int]bool{}
	for i := 0; len(out) < len(topo.addrs); i++ {
		ch := fmt.Sprintf("c%d", i)
		if sh := topo.shardOf(s.Key(ch)); sh >= 0 && !seen[sh] {
			seen[sh] = true
			out = append(out, ch)
		}
	}
	return out
}

// On a Redis Cluster the doorbell proves its path on every primary, with a
// probe key in one of that primary's slots, and rings channels whichever
// shard owns them.
func TestDoorbellOnCluster(t *testing.T) {
	t.Parallel()
	cc := testCluster(t)
	s := newTestStore(t, Config{Client: cc})
	d, b := startDoorbell(t, s, nil)
	channels := channelsOnShards(t, s, cc)
	for _, ch := range channels {
		d.Watch(ch)
	}
	waitProven(t, d)
	shards := d.Shards()
	if len(shards) != 3 {
		t.Fatalf("%d shards, want 3: %+v", len(shards), shards)
	}
	topo, _ := loadTopology(t.Context(), cc)
	d.mu.Lock()
	for i, bell := range d.bells {
		if !topo.owns(i, Slot(bell.probeKey)) {
			t.Errorf("probe %q of shard %s is in slot %d, not the shard's", bell.probeKey, bell.name, Slot(bell.probeKey))
		}
	}
	d.mu.Unlock()
	for _, sh := range shards {
		if sh.Delivery != DeliveryNotify || sh.Channels != 1 {
			t.Errorf("shard %+v, want notify with one channel", sh)
		}
	}
	for _, ch := range channels {
		waitRang(t, b, ch, 1) // the subscription's confirmation
		n := b.rang(ch)
		xadd(t, s, ch, "*", "x")
		waitRang(t, b, ch, n+1)
	}
}

// Reads span shards in one call (go-redis splits the pipeline per primary),
// and positions that are not in their streams are resolved per slot: a
// cluster refuses a transaction over keys of several slots.
func TestReadManyAcrossShards(t *testing.T) {
	t.Parallel()
	cc := testCluster(t)
	s := newTestStore(t, Config{Client: cc})
	channels := channelsOnShards(t, s, cc)
	var cursors []Cursor
	for _, ch := range channels {
		for _, id := range []string{"10-0", "20-0", "30-0"} {
			xadd(t, s, ch, id, "d"+id)
		}
		if err := cc.XTrimMaxLen(t.Context(), s.Key(ch), 1).Err(); err != nil { // keeps 30-0
			t.Fatal(err)
		}
		cursors = append(cursors, Cursor{Channel: ch, After: mustID(t, "10-0"), Seen: true})
	}
	batches, err := s.ReadMany(t.Context(), cursors, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range batches {
		if b.Err != nil || b.Gap == nil || b.Gap.Reason != GapTrimmed || len(b.Entries) != 1 || b.Entries[0].ID.String() != "30-0" {
			t.Errorf("%s: %+v, want a trimmed gap then 30-0", channels[i], b)
		}
	}
}
