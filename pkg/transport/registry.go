package transport

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushcluster/pushcluster/pkg/cluster"
)

// Registry is the node's client connections, whatever transport carries
// them: it tracks them, keeps them alive (Server.Run's heartbeats), ends
// them to drain the node or shed its load, and answers the cluster's
// questions about them. Its methods are safe for concurrent use and never
// block on a client.
type Registry struct {
	node string
	subs func() int64 // live subscriptions, for the load gossiped

	mu    sync.Mutex
	conns map[*conn]int // → heartbeat slot
	byID  map[string][]*conn
	// byChannel indexes the connections by the channels they listen on,
	// so that a channel's presence costs its own members, not the node's.
	byChannel map[string]map[*conn]struct{}
	ending    map[*conn]struct{}
	nextSlot  int
	closing   bool
	kinds     []*kind

	draining, isolated atomic.Bool
	// wg counts tracked connections and the goroutines they start, so that
	// wait returns only once all of them have exited.
	wg sync.WaitGroup

	direct, drained, shed atomic.Uint64
}

// NewRegistry returns the registry of a node named node; subscriptions
// counts its live subscriptions (the hub's).
func NewRegistry(node string, subscriptions func() int64) *Registry {
	return &Registry{
		node: node, subs: subscriptions,
		conns: make(map[*conn]int), byID: make(map[string][]*conn), ending: make(map[*conn]struct{}),
		byChannel: make(map[string]map[*conn]struct{}),
	}
}

// listen and unlisten keep the channel index.
func (r *Registry) listen(c *conn, channel string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.byChannel[channel]
	if set == nil {
		set = make(map[*conn]struct{})
		r.byChannel[channel] = set
	}
	set[c] = struct{}{}
}

func (r *Registry) unlisten(c *conn, channel string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if set := r.byChannel[channel]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(r.byChannel, channel)
		}
	}
}

// listening returns the connections that listen on channel.
func (r *Registry) listening(channel string) []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.byChannel[channel]
	out := make([]*conn, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	return out
}

// kind is a transport as the registry counts its connections.
type kind struct {
	name  string // in the cluster's load, /api/cluster and presence
	label string // in the metrics
	open  atomic.Int64
}

// kind registers a transport named name, labelled label in the metrics,
// or returns the one registered under name.
func (r *Registry) kind(name, label string) *kind {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.kinds {
		if k.name == name {
			return k
		}
	}
	k := &kind{name: name, label: label}
	r.kinds = append(r.kinds, k)
	return k
}

// counts returns the open connections by transport, keyed by name, or by
// metric label, every registered transport included.
func (r *Registry) counts(byLabel bool) map[string]int {
	r.mu.Lock()
	kinds := r.kinds
	r.mu.Unlock()
	out := make(map[string]int, len(kinds))
	for _, k := range kinds {
		key := k.name
		if byLabel {
			key = k.label
		}
		out[key] = int(k.open.Load())
	}
	return out
}

// Connections returns how many client connections are open.
func (r *Registry) Connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// track registers c; false once the node is shutting down.
func (r *Registry) track(c *conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return false
	}
	r.conns[c] = r.nextSlot
	r.nextSlot = (r.nextSlot + 1) % heartbeatSlots
	r.byID[c.client] = append(r.byID[c.client], c)
	c.kind.open.Add(1)
	r.wg.Add(1)
	return true
}

// untrack forgets c; it reports whether c was tracked.
func (r *Registry) untrack(c *conn) bool {
	r.mu.Lock()
	_, ok := r.conns[c]
	if ok {
		delete(r.conns, c)
		delete(r.ending, c)
		r.byID[c.client] = slices.DeleteFunc(r.byID[c.client], func(o *conn) bool { return o == c })
		if len(r.byID[c.client]) == 0 {
			delete(r.byID, c.client)
		}
	}
	r.mu.Unlock()
	if ok {
		c.kind.open.Add(-1)
		r.wg.Done()
	}
	return ok
}

// spawn runs f on a goroutine that wait waits for. Only a tracked
// connection may spawn, so the wait group never restarts from zero.
func (r *Registry) spawn(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

// hold counts a connection that holds no goroutine of its own while it is
// idle as one, until release, so that wait waits for it.
func (r *Registry) hold()    { r.wg.Add(1) }
func (r *Registry) release() { r.wg.Done() }

// wait returns once every connection and its goroutines have ended.
func (r *Registry) wait() { r.wg.Wait() }

func (r *Registry) inSlot(slot int) []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*conn
	for c, sl := range r.conns {
		if sl == slot {
			out = append(out, c)
		}
	}
	return out
}

func (r *Registry) snapshot() []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		out = append(out, c)
	}
	return out
}

var _ cluster.Local = (*Registry)(nil)

// Load returns the node's connections by transport and its subscriptions,
// for the cluster's gossip.
func (r *Registry) Load() cluster.Load {
	return cluster.Load{Connections: r.counts(false), Subscriptions: int(r.subs())}
}

// Draining reports whether the node is draining its connections.
func (r *Registry) Draining() bool { return r.draining.Load() }

// Presence lists the local clients subscribed to channel.
func (r *Registry) Presence(channel string) []cluster.Client {
	conns := r.listening(channel)
	out := make([]cluster.Client, 0, len(conns))
	for _, c := range conns {
		out = append(out, c.info())
	}
	return out
}

// PresenceCount returns the distinct clients and users listening on
// channel here.
func (r *Registry) PresenceCount(channel string) (clients, users []string) {
	cs, us := map[string]bool{}, map[string]bool{}
	for _, c := range r.listening(channel) {
		if !cs[c.client] {
			cs[c.client] = true
			clients = append(clients, c.client)
		}
		if u := c.who.Load().Subject; u != "" && !us[u] {
			us[u] = true
			users = append(users, u)
		}
	}
	return clients, users
}

// Clients lists up to limit local clients whose IDs sort after after.
func (r *Registry) Clients(after string, limit int) []cluster.Client {
	var out []cluster.Client
	for _, c := range r.snapshot() {
		if in := c.info(); in.ID > after {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b cluster.Client) int { return strings.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Deliver queues m to every local connection of client.
func (r *Registry) Deliver(client string, m cluster.Direct) int {
	n := 0
	for _, c := range r.connsOf(client) {
		if c.direct(m) {
			n++
		}
	}
	r.direct.Add(uint64(n))
	return n
}

// Disconnect ends every local connection of client.
func (r *Registry) Disconnect(client string) int {
	conns := r.connsOf(client)
	for _, c := range conns {
		c.a.end(errDisconnected)
	}
	return len(conns)
}

func (r *Registry) connsOf(client string) []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.byID[client])
}

// drainStep is the mean time between two batches of a drain.
const drainStep = 200 * time.Millisecond

// drain ends every connection in randomly spaced batches of randomly
// chosen connections over timeout, so that their clients do not all
// reconnect to the other nodes at once, and then whatever is left. New
// streams that arrive meanwhile (the load balancer has not yet seen
// /readyz fail) are sent on at once (Server.sendingOn).
func (r *Registry) drain(timeout time.Duration) {
	r.BeginDrain()
	deadline := time.Now().Add(timeout)
	for {
		left := r.notEnding()
		if len(left) == 0 {
			return
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			break
		}
		batches := max(1, int(remaining/drainStep))
		n := (len(left) + batches - 1) / batches
		rand.Shuffle(len(left), func(i, j int) { left[i], left[j] = left[j], left[i] })
		r.endAll(left[:n], errDrain)
		r.drained.Add(uint64(n))
		time.Sleep(min(remaining, time.Duration(float64(drainStep)*(0.5+rand.Float64()))))
	}
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	left := r.notEnding()
	r.endAll(left, errShutdown)
	r.drained.Add(uint64(len(left)))
}

// BeginDrain makes /readyz fail, so load balancers stop sending clients,
// ahead of the drain itself, and sends new streams on.
func (r *Registry) BeginDrain() { r.draining.Store(true) }

// SetIsolated marks the node cut off from Redis and the cluster, or no
// longer: new streams are sent on while it is.
func (r *Registry) SetIsolated(on bool) { r.isolated.Store(on) }

// Isolated reports whether SetIsolated(true) is in force.
func (r *Registry) Isolated() bool { return r.isolated.Load() }

// sendingOn reports whether new streams are sent to other nodes rather
// than served: the node is draining or isolated. The load balancer has not
// yet seen /readyz fail, or cannot; a client sent on at once loses nothing
// and waits no drain.
func (r *Registry) sendingOn() bool { return r.draining.Load() || r.isolated.Load() }

// Shed ends up to n randomly chosen connections so that their clients
// reconnect, through the load balancer, to less loaded nodes. It returns
// how many it ended.
func (r *Registry) Shed(n int) int {
	left := r.notEnding()
	n = min(n, len(left))
	for i := range n { // a partial Fisher-Yates: the first n are a random choice
		j := i + rand.IntN(len(left)-i)
		left[i], left[j] = left[j], left[i]
	}
	r.endAll(left[:n], errShed)
	r.shed.Add(uint64(n))
	return n
}

// notEnding returns the tracked connections not yet being ended.
func (r *Registry) notEnding() []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		if _, ok := r.ending[c]; !ok {
			out = append(out, c)
		}
	}
	return out
}

func (r *Registry) endAll(cs []*conn, reason error) {
	r.mu.Lock()
	for _, c := range cs {
		r.ending[c] = struct{}{}
	}
	r.mu.Unlock()
	for _, c := range cs {
		c.a.end(reason)
	}
}
