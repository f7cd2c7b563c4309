package rediscluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/pushcluster/pushcluster/internal/waitfor"
)

// MasterName is the name the Sentinels know the group's master by.
const MasterName = "pushmaster"

// Sentinel is a Sentinel group: one primary, one replica and three
// Sentinels with a quorum of two, on loopback ports.
type Sentinel struct {
	Redis     []*Server // the primary first, at start
	Sentinels []*Server
	dir       string
}

// StartSentinel starts the group and waits until every Sentinel knows the
// replica and the other Sentinels.
func StartSentinel(ctx context.Context) (g *Sentinel, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "redissentinel")
	if err != nil {
		return nil, err
	}
	g = &Sentinel{dir: dir}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	const data = "appendonly no\nsave \"\"\n"
	primary, err := newServer("redis-server", dir, data)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(primary.Addr)
	replica, err := newServer("redis-server", dir, data+"replicaof "+host+" "+port+"\n")
	if err != nil {
		return nil, err
	}
	g.Redis = []*Server{primary, replica}
	for _, s := range g.Redis {
		if err := s.Start(ctx); err != nil {
			return nil, err
		}
	}
	for range 3 {
		s, err := newServer("redis-sentinel", dir, fmt.Sprintf(
			"sentinel monitor %s %s %s 2\nsentinel down-after-milliseconds %[1]s 1000\n"+
				"sentinel failover-timeout %[1]s 5000\nsentinel parallel-syncs %[1]s 1\n", MasterName, host, port))
		if err != nil {
			return nil, err
		}
		if err := s.Start(ctx); err != nil {
			return nil, err
		}
		g.Sentinels = append(g.Sentinels, s)
	}
	return g, g.waitKnown(ctx, primary.Addr)
}

// Addrs returns the Sentinels' addresses.
func (g *Sentinel) Addrs() []string {
	var out []string
	for _, s := range g.Sentinels {
		out = append(out, s.Addr)
	}
	return out
}

// Close kills every process and removes their files.
func (g *Sentinel) Close() {
	for _, s := range append(g.Sentinels, g.Redis...) {
		s.Kill()
	}
	os.RemoveAll(g.dir)
}

// Master returns the master's address as the first Sentinel says.
func (g *Sentinel) Master(ctx context.Context) (string, error) {
	return g.masterVia(ctx, g.Sentinels[0])
}

func (g *Sentinel) masterVia(ctx context.Context, s *Server) (string, error) {
	hp, err := do(ctx, s.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName).StringSlice()
	if err != nil {
		return "", err
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("rediscluster: no master known")
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// Server returns the Redis server at addr, or nil.
func (g *Sentinel) Server(addr string) *Server {
	for _, s := range g.Redis {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// waitKnown waits until every Sentinel names master, knows a replica that
// is linked to it, and the two other Sentinels.
func (g *Sentinel) waitKnown(ctx context.Context, master string) error {
	var why error
	err := waitfor.Until(ctx, settle, 50*time.Millisecond, func() bool {
		why = g.known(ctx, master)
		return why == nil
	})
	if err != nil {
		return fmt.Errorf("rediscluster: Sentinel group not settled: %v: %w", why, err)
	}
	return nil
}

func (g *Sentinel) known(ctx context.Context, master string) error {
	for _, s := range g.Sentinels {
		if !s.Running() {
			continue
		}
		m, err := g.masterVia(ctx, s)
		if err != nil || m != master {
			return fmt.Errorf("%s names master %q (%v), want %s", s.Addr, m, err, master)
		}
		info, err := do(ctx, s.Addr, "SENTINEL", "MASTER", MasterName).Slice()
		if err != nil {
			return err
		}
		fields := map[string]string{}
		for i := 0; i+1 < len(info); i += 2 {
			fields[fmt.Sprint(info[i])] = fmt.Sprint(info[i+1])
		}
		if fields["num-slaves"] != "1" || fields["num-other-sentinels"] != "2" || strings.Contains(fields["flags"], "down") {
			return fmt.Errorf("%s: replicas %s, other sentinels %s, flags %s", s.Addr, fields["num-slaves"], fields["num-other-sentinels"], fields["flags"])
		}
	}
	role, err := do(ctx, master, "ROLE").Slice()
	if err != nil || len(role) == 0 || role[0] != "master" {
		return fmt.Errorf("%s is not a master yet: %v %v", master, role, err)
	}
	for _, s := range g.Redis {
		if s.Running() && s.Addr != master {
			repl, err := do(ctx, s.Addr, "INFO", "replication").Text()
			if err != nil || !strings.Contains(repl, "master_link_status:up") {
				return fmt.Errorf("%s: replica not linked", s.Addr)
			}
		}
	}
	return nil
}

// Failover asks the Sentinels for a failover (SENTINEL FAILOVER: the old
// primary stays up and becomes a replica), waits until it is done and
// returns the new master's address.
func (g *Sentinel) Failover(ctx context.Context) (string, error) {
	old, err := g.Master(ctx)
	if err != nil {
		return "", err
	}
	if err := do(ctx, g.Sentinels[0].Addr, "SENTINEL", "FAILOVER", MasterName).Err(); err != nil {
		return "", err
	}
	return g.waitNewMaster(ctx, old)
}

// KillPrimary kills the primary with SIGKILL, waits until the Sentinels
// have promoted the replica and returns its address.
func (g *Sentinel) KillPrimary(ctx context.Context) (string, error) {
	old, err := g.Master(ctx)
	if err != nil {
		return "", err
	}
	g.Server(old).Kill()
	return g.waitNewMaster(ctx, old)
}

func (g *Sentinel) waitNewMaster(ctx context.Context, old string) (string, error) {
	var next string
	err := waitfor.Until(ctx, settle, 50*time.Millisecond, func() bool {
		m, err := g.Master(ctx)
		if err != nil || m == old {
			return false
		}
		next = m
		return g.promoted(ctx, m)
	})
	if err != nil {
		return "", fmt.Errorf("rediscluster: no new master after %s: %w", old, err)
	}
	return next, nil
}

// promoted reports whether every Sentinel names m and m is a master.
func (g *Sentinel) promoted(ctx context.Context, m string) bool {
	for _, s := range g.Sentinels {
		if got, err := g.masterVia(ctx, s); err != nil || got != m {
			return false
		}
	}
	role, err := do(ctx, m, "ROLE").Slice()
	return err == nil && len(role) > 0 && role[0] == "master"
}
