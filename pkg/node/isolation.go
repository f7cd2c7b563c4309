package node

import (
	"context"
	"time"

	"github.com/pushcluster/pushcluster/pkg/cluster"
)

// DefaultIsolationTimeout is how long a node in a cluster may reach neither
// Redis nor any other member before it sends its clients elsewhere: longer
// than a Sentinel or Redis Cluster failover and memberlist's failure
// detection, so that neither alone moves anyone.
const DefaultIsolationTimeout = 30 * time.Second

const isolationTick = time.Second

// watchIsolation ends the node's connections, a share each second, while
// it is cut off from everything for longer than the isolation timeout: it
// reaches no Redis, so its clients get no message, and no member, so the
// others are not cut off too (they would have nowhere better to go). Its
// clients reconnect through the load balancer to nodes that can serve them
// and resume from their last position; new ones are sent on at once, as by
// a draining node, until Redis or a member answers again. A node alone has
// nowhere to send anyone and never isolates itself, nor does one whose
// every peer left on purpose.
func (n *Node) watchIsolation(ctx context.Context) {
	timeout := n.cfg.IsolationTimeout
	if timeout == 0 {
		timeout = DefaultIsolationTimeout
	}
	if timeout < 0 || !n.cluster.Enabled() {
		return
	}
	t := time.NewTicker(isolationTick)
	defer t.Stop()
	var since time.Time // when it was last seen connected to something
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !n.cutOff(ctx) {
			since = time.Time{}
			if n.reg.Isolated() {
				n.reg.SetIsolated(false)
				n.log.Info("isolation over: Redis or a member answers again; taking clients")
			}
			continue
		}
		if since.IsZero() {
			since = time.Now()
		}
		if time.Since(since) < timeout {
			continue
		}
		if !n.reg.Isolated() {
			n.reg.SetIsolated(true)
			n.log.Warn("isolated: neither Redis nor any member answers; ending connections so their clients move to nodes that can serve them",
				"for", time.Since(since).Round(time.Second), "connections", n.reg.Connections())
		}
		if c := n.reg.Connections(); c > 0 {
			n.reg.Shed(max(1, c/5)) // in five seconds or so, not all at once
		}
	}
}

// cutOff reports whether the node reaches neither Redis nor an alive
// member, having lost (not seen leave) at least one.
func (n *Node) cutOff(ctx context.Context) bool {
	lost := false
	for _, m := range n.cluster.Members() {
		switch {
		case m.Self:
		case m.State == cluster.StateAlive:
			return false
		case m.State == cluster.StateSuspect || m.State == cluster.StateDead:
			lost = true
		}
	}
	if !lost {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, isolationTick/2)
	defer cancel()
	return n.store.Ping(pctx) != nil
}
