package node

import (
	"context"
	"math"
	"net"
	"os"
	"strings"
	"time"

	"github.com/pushcluster/pushcluster/pkg/cluster"
)

// Defaults for RebalanceConfig.
const (
	DefaultRebalanceFactor = 1.25
	DefaultRebalanceAfter  = 30 * time.Second
	DefaultRebalanceRate   = 0.02
	rebalanceTick          = time.Second
)

// RebalanceConfig configures how a node sheds connections when it carries
// more than its share of the cluster: long-lived connections never move
// by themselves after a scale-out.
type RebalanceConfig struct {
	// Factor: a node sheds while its connections exceed the cluster mean
	// times Factor by more than cluster.RebalanceSlack. Zero means
	// DefaultRebalanceFactor; negative turns rebalancing off.
	Factor float64
	// After is how long the excess must last before shedding starts.
	// Zero means DefaultRebalanceAfter.
	After time.Duration
	// Rate bounds shedding, as a fraction of the node's connections per
	// second. Zero means DefaultRebalanceRate.
	Rate float64
}

func (rc RebalanceConfig) withDefaults() RebalanceConfig {
	if rc.Factor == 0 {
		rc.Factor = DefaultRebalanceFactor
	}
	if rc.After == 0 {
		rc.After = DefaultRebalanceAfter
	}
	if rc.Rate == 0 {
		rc.Rate = DefaultRebalanceRate
	}
	return rc
}

// rebalance sheds excess connections, at a bounded rate, while the node
// carries more than its share for longer than the configured time. Shed
// clients reconnect through the load balancer and resume, as in a drain.
func (n *Node) rebalance(ctx context.Context) {
	rc := n.cfg.Rebalance.withDefaults()
	if rc.Factor <= 0 || !n.cluster.Enabled() {
		return
	}
	t := time.NewTicker(rebalanceTick)
	defer t.Stop()
	var over time.Time // when the excess began; zero when there is none
	var counted string // the members the excess was computed over
	budget := 0.0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		members := n.cluster.Members()
		excess := cluster.Excess(members, n.cfg.Name, rc.Factor)
		// An excess seen over other members is not the same excess: a
		// member that joins or goes starts the wait again, so nothing is
		// shed sooner than After after a scale-out, however the loads
		// gossiped before it looked.
		if now := countedMembers(members); now != counted {
			over, budget, counted = time.Time{}, 0, now
		}
		if excess == 0 || n.reg.Draining() {
			over, budget = time.Time{}, 0
			continue
		}
		if over.IsZero() {
			over = time.Now()
		}
		if time.Since(over) < rc.After {
			continue
		}
		budget += rc.Rate * float64(n.reg.Connections()) * rebalanceTick.Seconds()
		if k := min(excess, int(math.Floor(budget))); k > 0 {
			shed := n.reg.Shed(k)
			budget -= float64(shed)
			n.log.Info("shedding connections to even out the cluster", "shed", shed, "excess", excess)
		}
	}
}

// countedMembers names the members rebalancing counts: alive and not
// draining.
func countedMembers(members []cluster.Member) string {
	var b strings.Builder
	for _, m := range members { // sorted by name
		if m.State == cluster.StateAlive && !m.Draining {
			b.WriteString(m.Name)
			b.WriteByte(0)
		}
	}
	return b.String()
}

// advertisedHTTP is the HTTP address other members and /api/cluster show:
// the listener's port on the gossip host when the listener is on every
// interface.
func advertisedHTTP(ln net.Addr, cc cluster.Config) string {
	host, port, err := net.SplitHostPort(ln.String())
	if err != nil {
		return ln.String()
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return ln.String()
	}
	for _, a := range []string{cc.Advertise, cc.Bind} {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" {
			if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
				return net.JoinHostPort(h, port)
			}
		}
	}
	if h, err := os.Hostname(); err == nil {
		return net.JoinHostPort(h, port)
	}
	return ln.String()
}
