package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// topology says which primary owns each hash slot: the shards a doorbell
// listens on. A Redis that is not a cluster (one server, or a Sentinel
// group's primary) is one shard holding every key.
type topology struct {
	// addrs are the primaries' addresses, sorted; the name of each shard.
	addrs []string
	// owner[slot] is the index in addrs of the slot's primary, or -1 while
	// no primary serves it. Nil for a single shard.
	owner []int16
}

func singleShard(name string) *topology { return &topology{addrs: []string{name}} }

// shardOf returns the index of the shard that owns key, or -1.
func (t *topology) shardOf(key string) int {
	if t.owner == nil {
		return 0
	}
	return int(t.owner[Slot(key)])
}

// owns reports whether shard i owns slot.
func (t *topology) owns(i, slot int) bool {
	return t.owner == nil || int(t.owner[slot]) == i
}

func (t *topology) equal(o *topology) bool {
	return o != nil && slices.Equal(t.addrs, o.addrs) && slices.Equal(t.owner, o.owner)
}

// loadTopology reads the cluster's slot map (CLUSTER SLOTS, which every
// Redis Cluster and Valkey version answers) from whichever node the client
// asks.
func loadTopology(ctx context.Context, cc *redis.ClusterClient) (*topology, error) {
	ranges, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("store: failed to read the cluster's slots: %w", err)
	}
	t := &topology{owner: make([]int16, SlotCount)}
	for i := range t.owner {
		t.owner[i] = -1
	}
	index := map[string]int16{}
	for _, r := range ranges {
		if len(r.Nodes) > 0 {
			index[r.Nodes[0].Addr] = 0
		}
	}
	for addr := range index {
		t.addrs = append(t.addrs, addr)
	}
	slices.Sort(t.addrs)
	for i, addr := range t.addrs {
		index[addr] = int16(i)
	}
	for _, r := range ranges {
		if len(r.Nodes) == 0 || r.Start < 0 || r.End >= SlotCount || r.Start > r.End {
			continue
		}
		for s := r.Start; s <= r.End; s++ {
			t.owner[s] = index[r.Nodes[0].Addr]
		}
	}
	if len(t.addrs) == 0 {
		return nil, fmt.Errorf("store: the cluster serves no slot")
	}
	return t, nil
}

// nodeOptions are the options of a connection of its own to one node of
// the cluster cc, with cc's credentials, TLS and timeouts: the doorbell's
// pub/sub connection to a shard's primary, which go-redis's own node
// clients would route by the pub/sub channel's slot instead.
func nodeOptions(cc *redis.ClusterClient, addr string) *redis.Options {
	o := cc.Options()
	return &redis.Options{
		Addr: addr, ClientName: o.ClientName, Dialer: o.Dialer, OnConnect: o.OnConnect,
		Protocol: o.Protocol, Username: o.Username, Password: o.Password,
		CredentialsProvider:          o.CredentialsProvider,
		CredentialsProviderContext:   o.CredentialsProviderContext,
		StreamingCredentialsProvider: o.StreamingCredentialsProvider,
		MaxRetries:                   o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		ContextTimeoutEnabled: o.ContextTimeoutEnabled,
		PoolSize:              2, // CONFIG GET and SET; pub/sub has connections of its own
		TLSConfig:             o.TLSConfig,
		DisableIdentity:       o.DisableIdentity, IdentitySuffix: o.IdentitySuffix,
		UnstableResp3:            o.UnstableResp3,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}
