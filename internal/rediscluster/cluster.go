package rediscluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/waitfor"
)

// settle bounds waiting for a deployment to agree with itself again.
const settle = 30 * time.Second

// Cluster is a Redis Cluster of three primaries with one replica each, on
// loopback ports, with keyspace notifications off (as a fresh Redis has
// them) so that whoever uses it turns them on.
type Cluster struct {
	Servers []*Server
	dir     string
}

// StartCluster starts six cluster-enabled redis-servers and joins them
// with redis-cli --cluster create … --cluster-replicas 1.
func StartCluster(ctx context.Context) (c *Cluster, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rediscluster")
	if err != nil {
		return nil, err
	}
	c = &Cluster{dir: dir}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for range 6 {
		bus, err := freeAddr()
		if err != nil {
			return nil, err
		}
		_, busPort, _ := net.SplitHostPort(bus)
		s, err := newServer("redis-server", dir, "cluster-enabled yes\ncluster-config-file nodes.conf\n"+
			"cluster-node-timeout 1000\ncluster-replica-validity-factor 0\ncluster-port "+busPort+"\n"+
			"appendonly no\nsave \"\"\n")
		if err != nil {
			return nil, err
		}
		if err := s.Start(ctx); err != nil {
			return nil, err
		}
		c.Servers = append(c.Servers, s)
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Seeds()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("rediscluster: redis-cli --cluster create: %v: %s", err, out)
	}
	return c, c.WaitSettled(ctx)
}

// Seeds returns every server's address.
func (c *Cluster) Seeds() []string {
	var out []string
	for _, s := range c.Servers {
		out = append(out, s.Addr)
	}
	return out
}

// Close kills every server and removes their files.
func (c *Cluster) Close() {
	for _, s := range c.Servers {
		s.Kill()
	}
	os.RemoveAll(c.dir)
}

// Server returns the server at addr, or nil.
func (c *Cluster) Server(addr string) *Server {
	for _, s := range c.Servers {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// Client returns a cluster client of its own; the caller closes it.
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Seeds(), Protocol: 2})
}

// node is one line of CLUSTER NODES.
type node struct {
	id, addr, master string
	primary, failed  bool
	slots            [][2]int
}

func (c *Cluster) nodes(ctx context.Context, via *Server) ([]node, error) {
	out, err := do(ctx, via.Addr, "CLUSTER", "NODES").Text()
	if err != nil {
		return nil, err
	}
	var nodes []node
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		n := node{id: f[0], addr: strings.SplitN(f[1], "@", 2)[0], master: f[3]}
		flags := f[2]
		n.primary = strings.Contains(flags, "master")
		n.failed = strings.Contains(flags, "fail") // fail and fail?
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being moved
			}
			lo, hi, _ := strings.Cut(r, "-")
			a, _ := strconv.Atoi(lo)
			b := a
			if hi != "" {
				b, _ = strconv.Atoi(hi)
			}
			n.slots = append(n.slots, [2]int{a, b})
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// view is the cluster as one live server sees it.
func (c *Cluster) view(ctx context.Context) ([]node, error) {
	for _, s := range c.Servers {
		if s.Running() {
			return c.nodes(ctx, s)
		}
	}
	return nil, fmt.Errorf("rediscluster: no server running")
}

// Primaries returns the addresses of the primaries that serve slots.
func (c *Cluster) Primaries(ctx context.Context) ([]string, error) {
	nodes, err := c.view(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nodes {
		if n.primary && !n.failed && len(n.slots) > 0 {
			out = append(out, n.addr)
		}
	}
	return out, nil
}

// Owner returns the address of the primary serving slot.
func (c *Cluster) Owner(ctx context.Context, slot int) (string, error) {
	nodes, err := c.view(ctx)
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		for _, r := range n.slots {
			if n.primary && !n.failed && slot >= r[0] && slot <= r[1] {
				return n.addr, nil
			}
		}
	}
	return "", fmt.Errorf("rediscluster: no primary serves slot %d", slot)
}

// WaitSettled waits until every running server says the cluster is ok,
// all of them see every slot served by a primary that is up, and every
// running replica's link to its primary is up.
func (c *Cluster) WaitSettled(ctx context.Context) error {
	var why error
	err := waitfor.Until(ctx, settle, 50*time.Millisecond, func() bool {
		why = c.settled(ctx)
		return why == nil
	})
	if err != nil {
		return fmt.Errorf("rediscluster: cluster not settled: %v: %w", why, err)
	}
	return nil
}

func (c *Cluster) settled(ctx context.Context) error {
	for _, s := range c.Servers {
		if !s.Running() {
			continue
		}
		info, err := do(ctx, s.Addr, "CLUSTER", "INFO").Text()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return fmt.Errorf("%s: not ok", s.Addr)
		}
		nodes, err := c.nodes(ctx, s)
		if err != nil {
			return err
		}
		covered := 0
		for _, n := range nodes {
			if !n.primary || len(n.slots) == 0 {
				continue
			}
			if n.failed || !c.Server(n.addr).Running() {
				return fmt.Errorf("%s: slots on %s, which is down", s.Addr, n.addr)
			}
			for _, r := range n.slots {
				covered += r[1] - r[0] + 1
			}
		}
		if covered != 16384 {
			return fmt.Errorf("%s: %d slots covered", s.Addr, covered)
		}
		repl, err := do(ctx, s.Addr, "INFO", "replication").Text()
		if err != nil {
			return err
		}
		if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
			return fmt.Errorf("%s: replica not linked", s.Addr)
		}
	}
	return nil
}

// KillPrimary kills the primary at addr with SIGKILL, waits until its
// replica has taken over and the cluster has settled, and returns the
// new primary's address.
func (c *Cluster) KillPrimary(ctx context.Context, addr string) (string, error) {
	nodes, err := c.view(ctx)
	if err != nil {
		return "", err
	}
	var id, replica string
	for _, n := range nodes {
		if n.addr == addr {
			id = n.id
		}
	}
	for _, n := range nodes {
		if n.master == id {
			replica = n.addr
		}
	}
	if id == "" || replica == "" {
		return "", fmt.Errorf("rediscluster: %s is not a primary with a replica", addr)
	}
	c.Server(addr).Kill()
	return replica, c.WaitSettled(ctx)
}

// MigrateSlot moves slot and its keys to the primary at to, as redis-cli
// --cluster reshard does: SETSLOT IMPORTING on the target, MIGRATING on
// the source, MIGRATE the keys in batches, then SETSLOT NODE everywhere.
// between, when not nil, runs once the slot is half-way (importing and
// migrating set, keys not yet moved).
func (c *Cluster) MigrateSlot(ctx context.Context, slot int, to string, between func()) error {
	from, err := c.Owner(ctx, slot)
	if err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("rediscluster: slot %d is already on %s", slot, to)
	}
	fromID, err := do(ctx, from, "CLUSTER", "MYID").Text()
	if err != nil {
		return err
	}
	toID, err := do(ctx, to, "CLUSTER", "MYID").Text()
	if err != nil {
		return err
	}
	if err := do(ctx, to, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromID).Err(); err != nil {
		return err
	}
	if err := do(ctx, from, "CLUSTER", "SETSLOT", slot, "MIGRATING", toID).Err(); err != nil {
		return err
	}
	if between != nil {
		between()
	}
	host, port, _ := net.SplitHostPort(to)
	for {
		keys, err := do(ctx, from, "CLUSTER", "GETKEYSINSLOT", slot, 100).StringSlice()
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := do(ctx, from, args...).Err(); err != nil {
			return fmt.Errorf("rediscluster: MIGRATE: %w", err)
		}
	}
	primaries, err := c.Primaries(ctx)
	if err != nil {
		return err
	}
	for _, p := range append([]string{to, from}, primaries...) {
		if err := do(ctx, p, "CLUSTER", "SETSLOT", slot, "NODE", toID).Err(); err != nil {
			return fmt.Errorf("rediscluster: SETSLOT NODE on %s: %w", p, err)
		}
	}
	return waitfor.Until(ctx, settle, 20*time.Millisecond, func() bool {
		for _, s := range c.Servers {
			if !s.Running() {
				continue
			}
			owner, err := c.ownerVia(ctx, s, slot)
			if err != nil || owner != to {
				return false
			}
		}
		return true
	})
}

func (c *Cluster) ownerVia(ctx context.Context, s *Server, slot int) (string, error) {
	nodes, err := c.nodes(ctx, s)
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		for _, r := range n.slots {
			if n.primary && slot >= r[0] && slot <= r[1] {
				return n.addr, nil
			}
		}
	}
	return "", fmt.Errorf("no owner")
}
