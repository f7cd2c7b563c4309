package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/pushcluster/pushcluster/internal/waitfor"
)

// clusterJoinTimeout bounds the wait for every started node to see every
// other one alive.
const clusterJoinTimeout = 30 * time.Second

// nodeCluster is the nodes a cluster scenario starts, each a child process
// on its own loopback address, gossiping with the first.
type nodeCluster struct {
	nodes []*child
	names []string
}

// startCluster starts one node per -node-ips address against the run's
// Redis (-cluster-profile local, rebalancing off: the scenarios put every
// client where they want it), and waits until each sees all alive.
func (r *runner) startCluster(ctx context.Context, drainTimeout time.Duration) (*nodeCluster, error) {
	bin, err := r.nodeBinary(ctx)
	if err != nil {
		return nil, err
	}
	cl := &nodeCluster{}
	var join string
	for i, ip := range r.cfg.NodeIPs {
		name := string(rune('a' + i))
		gossip := net.JoinHostPort(ip.String(), strconv.Itoa(r.cfg.GossipPort))
		addr, err := freeAddr(ip.String())
		if err != nil {
			cl.stop()
			return nil, fmt.Errorf("bench: no free port on %s: %w", ip, err)
		}
		args := []string{"-redis-url", r.cfg.RedisURL, "-prefix", r.cfg.Prefix, "-node-name", name,
			"-log-level", "warn", "-cluster-bind", gossip, "-cluster-profile", "local",
			"-drain-timeout", drainTimeout.String(), "-rebalance-factor", "0"}
		if join != "" {
			args = append(args, "-cluster-join", join)
		}
		n, err := runNode(ctx, bin, addr, args...)
		if err != nil {
			cl.stop()
			return nil, fmt.Errorf("bench: node %s (gossip %s): %w", name, gossip, err)
		}
		if join == "" {
			join = gossip
		}
		cl.nodes, cl.names = append(cl.nodes, n), append(cl.names, name)
		r.step("started node %s on %s, gossip %s (pid %d)", name, n.url(), gossip, n.pid())
	}
	if err := cl.waitJoined(ctx); err != nil {
		cl.stop()
		return nil, err
	}
	return cl, nil
}

// waitJoined polls every node's /api/cluster until each lists every node
// alive.
func (cl *nodeCluster) waitJoined(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	joined := func() bool {
		for _, n := range cl.nodes {
			if alive(client, n.url()) != len(cl.nodes) {
				return false
			}
		}
		return true
	}
	if err := waitfor.Until(ctx, clusterJoinTimeout, 100*time.Millisecond, joined); err != nil {
		return fmt.Errorf("bench: the %d nodes did not all see each other alive: %w", len(cl.nodes), err)
	}
	return nil
}

// alive returns how many members the node at base sees alive.
func alive(client *http.Client, base string) int {
	resp, err := client.Get(base + "/api/cluster")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var v struct {
		Nodes []struct {
			State string `json:"state"`
		} `json:"nodes"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&v) != nil {
		return 0
	}
	n := 0
	for _, m := range v.Nodes {
		if m.State == "alive" {
			n++
		}
	}
	return n
}

// stop stops every node still running, and waits for them.
func (cl *nodeCluster) stop() {
	for _, n := range cl.nodes {
		n.stop()
	}
}

// pids returns the nodes' process IDs.
func (cl *nodeCluster) pids() []int {
	out := make([]int, len(cl.nodes))
	for i, n := range cl.nodes {
		out[i] = n.pid()
	}
	return out
}
