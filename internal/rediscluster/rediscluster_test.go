package rediscluster

import (
	"context"
	"testing"
	"time"
)

func TestClusterAndSentinel(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	t.Parallel()
	ctx := context.Background()
	start := time.Now()
	c, err := StartCluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Logf("cluster up in %v", time.Since(start))
	ps, err := c.Primaries(ctx)
	if err != nil || len(ps) != 3 {
		t.Fatalf("primaries %v %v", ps, err)
	}
	owner, _ := c.Owner(ctx, 100)
	var to string
	for _, p := range ps {
		if p != owner {
			to = p
		}
	}
	start = time.Now()
	if err := c.MigrateSlot(ctx, 100, to, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("slot moved in %v", time.Since(start))
	start = time.Now()
	next, err := c.KillPrimary(ctx, ps[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover %s → %s in %v", ps[0], next, time.Since(start))

	start = time.Now()
	g, err := StartSentinel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	t.Logf("sentinel up in %v", time.Since(start))
	start = time.Now()
	m, err := g.Failover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sentinel failover to %s in %v", m, time.Since(start))
	start = time.Now()
	m, err = g.KillPrimary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sentinel kill failover to %s in %v", m, time.Since(start))
}
