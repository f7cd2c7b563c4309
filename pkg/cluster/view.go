package cluster

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// forgetAfter is how long a dead or departed member stays in the view.
const forgetAfter = 5 * time.Minute

// view is this member's picture of the cluster, kept from memberlist's
// events. Its methods are safe for concurrent use and never block.
type view struct {
	self  string
	every time.Duration // update interval of members that do not say theirs

	mu      sync.Mutex
	members map[string]*peer
}

type peer struct {
	node  *memberlist.Node // a copy
	meta  meta
	state string
	heard time.Time
	bad   bool // its metadata could not be decoded
}

// staleAfter is how many of a member's update intervals may pass without
// news before it is reported suspect.
const staleAfter = 3

func (v *view) init(self string, every time.Duration) {
	v.self, v.every = self, every
	v.members = make(map[string]*peer)
}

// seen records a member that joined or updated its metadata.
func (v *view) seen(n *memberlist.Node) {
	m, err := decodeMeta(n.Meta)
	cp := *n
	cp.Meta = nil
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.members[n.Name]
	if p == nil {
		p = &peer{}
		v.members[n.Name] = p
	}
	p.node, p.state, p.heard, p.bad = &cp, StateAlive, time.Now(), err != nil
	if err == nil {
		p.meta = m
	}
}

// gone records a member memberlist declared dead or departed; one that
// announced its leaving in its metadata left, any other died.
func (v *view) gone(n *memberlist.Node) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.members[n.Name]
	if p == nil {
		return
	}
	p.state, p.heard = StateDead, time.Now()
	if p.meta.Leaving {
		p.state = StateLeft
	}
}

// list returns the members sorted by name, forgetting long-gone ones.
func (v *view) list(now time.Time) []Member {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]Member, 0, len(v.members))
	for name, p := range v.members {
		state := p.state
		if state == StateAlive && name != v.self && now.Sub(p.heard) > staleAfter*p.every(v.every) {
			state = StateSuspect
		}
		if (state == StateDead || state == StateLeft) && now.Sub(p.heard) > forgetAfter {
			delete(v.members, name)
			continue
		}
		out = append(out, p.member(state, name == v.self))
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// peers returns the memberlist nodes to ask a question: every member but
// this one that is not known to be gone.
func (v *view) peers() []*memberlist.Node {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []*memberlist.Node
	for name, p := range v.members {
		if name != v.self && (p.state == StateAlive) && !p.bad {
			out = append(out, p.node)
		}
	}
	return out
}

func (v *view) node(name string) *memberlist.Node {
	v.mu.Lock()
	defer v.mu.Unlock()
	if p := v.members[name]; p != nil && p.state == StateAlive {
		return p.node
	}
	return nil
}

// authenticates reports whether the member gossips that it authenticates
// its callers; an unknown member does not.
func (v *view) authenticates(name string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.members[name]
	return p != nil && !p.bad && p.meta.Auth
}

// every is the member's own update interval, or def when it gave none.
func (p *peer) every(def time.Duration) time.Duration {
	if p.meta.Every > 0 {
		return time.Duration(p.meta.Every) * time.Millisecond
	}
	return def
}

func (p *peer) member(state string, self bool) Member {
	m := &p.meta
	return Member{
		Name: p.node.Name, State: state, HTTP: m.HTTP, Gossip: p.node.Address(),
		Connections: m.conns(), Subs: m.Subs,
		Draining: m.Draining || m.Leaving, Version: m.Version, Started: m.started(), Self: self,
		Auth: authMode(m.Auth),
	}
}

// delegate is the Cluster as memberlist's Delegate. Its methods run on
// memberlist's goroutines and must not block.
type delegate Cluster

var _ memberlist.Delegate = (*delegate)(nil)

func (d *delegate) NodeMeta(limit int) []byte {
	c := (*Cluster)(d)
	m := c.localMeta()
	b, err := m.encode(limit)
	if err != nil {
		m.HTTP, m.Version = "", ""
		b, _ = m.encode(limit)
	}
	return b
}

// NotifyMsg receives a question or an answer; it only queues it.
func (d *delegate) NotifyMsg(b []byte) { (*Cluster)(d).rpc.receive(b) }

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// events is the Cluster as memberlist's EventDelegate: it only records.
type events Cluster

var _ memberlist.EventDelegate = (*events)(nil)

func (e *events) NotifyJoin(n *memberlist.Node) {
	c := (*Cluster)(e)
	c.view.seen(n)
	if n.Name != c.cfg.Name {
		c.log.Info("cluster member joined", "member", n.Name, "addr", n.Address())
	}
}

func (e *events) NotifyUpdate(n *memberlist.Node) { (*Cluster)(e).view.seen(n) }

func (e *events) NotifyLeave(n *memberlist.Node) {
	c := (*Cluster)(e)
	c.view.gone(n)
	c.log.Info("cluster member gone", "member", n.Name, "addr", n.Address())
	if c.cfg.OnGone != nil && n.Name != c.cfg.Name {
		go c.cfg.OnGone(n.Name)
	}
}
