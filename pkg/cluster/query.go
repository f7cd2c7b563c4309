package cluster

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Members returns this member's view of the cluster, itself included,
// sorted by name.
func (c *Cluster) Members() []Member {
	self := c.selfMember()
	if c.mlp.Load() == nil {
		return []Member{self}
	}
	list := c.view.list(time.Now())
	for i := range list {
		if list[i].Name == c.cfg.Name {
			self.Gossip = list[i].Gossip
			list[i] = self
			return list
		}
	}
	return append(list, self)
}

func (c *Cluster) selfMember() Member {
	l := c.cfg.Local.Load()
	return Member{
		Name: c.cfg.Name, State: StateAlive, HTTP: c.cfg.HTTP, Gossip: c.cfg.Bind,
		Connections: l.Connections, Subs: l.Subscriptions,
		Draining: c.cfg.Local.Draining(), Version: c.cfg.Version,
		Started: c.started.UTC().Truncate(time.Millisecond), Self: true,
		Auth: authMode(c.cfg.AuthRequired),
	}
}

// trusts reports whether this member acts on a question from the member
// named from: always when it lets anyone in itself, else only when that
// member authenticates its callers too. Members are trusted to relay only
// what they were allowed to ask; who may be a member is the gossip key's
// business (Config.Key).
func (c *Cluster) trusts(from string) bool {
	return !c.cfg.AuthRequired || c.view.authenticates(from)
}

func authMode(required bool) string {
	if required {
		return "required"
	}
	return "open"
}

// Presence lists the clients subscribed to channel on every member.
func (c *Cluster) Presence(ctx context.Context, channel string) (ClientList, Answer) {
	local := encodeClients(c.cfg.Local.Presence(channel))
	answers, a := c.askAll(ctx, envelope{Op: opPresence, Channel: channel, Encoded: true})
	return mergeClients(append(listsOf(answers), local)), a
}

func listsOf(answers []*envelope) []ClientList {
	out := make([]ClientList, len(answers))
	for i, e := range answers {
		out[i] = clientsOf(e)
	}
	return out
}

// PresenceCount counts the distinct clients and users subscribed to
// channel on every member: the answer to poll when the list is not
// needed, a few bytes per client on the wire.
func (c *Cluster) PresenceCount(ctx context.Context, channel string) (clients, users int, a Answer) {
	ids, us := map[uint64]struct{}{}, map[uint64]struct{}{}
	lc, lu := c.cfg.Local.PresenceCount(channel)
	for _, id := range lc {
		ids[idHash(id)] = struct{}{}
	}
	for _, u := range lu {
		us[idHash(u)] = struct{}{}
	}
	answers, a := c.askAll(ctx, envelope{Op: opCount, Channel: channel})
	for _, e := range answers {
		unpackHashes(e.IDs, ids)
		unpackHashes(e.Users, us)
	}
	return len(ids), len(us), a
}

// idHash is the 8-byte hash a count answer carries for an ID: FNV-1a,
// which collides once in billions of IDs.
func idHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

func packHashes(ids []string) string {
	b := make([]byte, 0, 8*len(ids))
	for _, id := range ids {
		b = binary.LittleEndian.AppendUint64(b, idHash(id))
	}
	return base64.RawStdEncoding.EncodeToString(b)
}

func unpackHashes(s string, into map[uint64]struct{}) {
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return
	}
	for ; len(b) >= 8; b = b[8:] {
		into[binary.LittleEndian.Uint64(b)] = struct{}{}
	}
}

// Clients lists up to limit connected clients of the whole cluster whose
// IDs sort after after, in ID order; more reports that others follow.
func (c *Cluster) Clients(ctx context.Context, after string, limit int) (clients ClientList, more bool, a Answer) {
	limit = min(max(limit, 1), maxQueryClient)
	local := encodeClients(c.cfg.Local.Clients(after, limit+1))
	answers, a := c.askAll(ctx, envelope{Op: opClients, After: after, Limit: limit + 1, Encoded: true})
	all := mergeClients(append(listsOf(answers), local))
	return all.truncate(limit), all.Len() > limit, a
}

// Delivery is where a message to one client went.
type Delivery struct {
	// Connections is how many connections it was queued to.
	Connections int
	// Nodes names the members that hold the client.
	Nodes []string
	Answer
}

// Deliver queues m to client on whichever members hold it. It asks the
// member that held the client last time first, and every member when that
// one no longer does. ErrNotFound means every member answered and none
// holds the client.
func (c *Cluster) Deliver(ctx context.Context, client string, m Direct) (Delivery, error) {
	return c.reach(ctx, envelope{Op: opDeliver, Client: client, Direct: &m})
}

// Disconnect closes client's connections on whichever members hold it.
func (c *Cluster) Disconnect(ctx context.Context, client string) (Delivery, error) {
	return c.reach(ctx, envelope{Op: opDisconnect, Client: client})
}

func (c *Cluster) reach(ctx context.Context, q envelope) (Delivery, error) {
	var d Delivery
	if n := c.answer(&q).Count; n > 0 {
		d.Connections, d.Nodes = n, []string{c.cfg.Name}
		return d, nil
	}
	if c.mlp.Load() == nil {
		return d, ErrNotFound
	}
	if name := c.where.get(q.Client); name != "" {
		if node := c.view.node(name); node != nil {
			qctx, cancel := context.WithTimeout(ctx, c.cfg.QueryTimeout)
			answers, _ := c.rpc.ask(qctx, []*memberlist.Node{node}, q)
			cancel()
			if d.add(answers); d.Connections > 0 {
				return d, nil
			}
		}
	}
	answers, a := c.askAll(ctx, q)
	d.Answer = a
	d.add(answers)
	if d.Connections == 0 {
		c.where.forget(q.Client)
		if !a.Partial {
			return d, ErrNotFound
		}
		return d, nil
	}
	c.where.put(q.Client, d.Nodes[0])
	return d, nil
}

func (d *Delivery) add(answers []*envelope) {
	for _, e := range answers {
		if e.Count > 0 {
			d.Connections += e.Count
			d.Nodes = append(d.Nodes, e.From)
		}
	}
	slices.Sort(d.Nodes)
}

// askAll asks every other live member, within the query timeout.
func (c *Cluster) askAll(ctx context.Context, q envelope) ([]*envelope, Answer) {
	if c.mlp.Load() == nil {
		return nil, Answer{Missing: []string{}}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.QueryTimeout)
	defer cancel()
	answers, missing := c.rpc.ask(ctx, c.view.peers(), q)
	kept := answers[:0]
	for _, e := range answers {
		if e.Refused { // it would not act for this member: as if it had not answered
			missing = append(missing, e.From)
			continue
		}
		kept = append(kept, e)
	}
	answers = kept
	slices.Sort(missing)
	if missing == nil {
		missing = []string{}
	}
	return answers, Answer{Partial: len(missing) > 0, Missing: missing}
}

// answer is this member's answer to q, from the local node.
func (c *Cluster) answer(q *envelope) envelope {
	l := c.cfg.Local
	switch q.Op {
	case opPresence:
		return clientsAnswer(q, l.Presence(q.Channel))
	case opCount:
		ids, users := l.PresenceCount(q.Channel)
		return envelope{IDs: packHashes(ids), Users: packHashes(users)}
	case opClients:
		return clientsAnswer(q, l.Clients(q.After, min(max(q.Limit, 1), maxQueryClient+1)))
	case opDeliver:
		if q.Direct == nil {
			return envelope{}
		}
		return envelope{Count: l.Deliver(q.Client, *q.Direct)}
	case opDisconnect:
		return envelope{Count: l.Disconnect(q.Client)}
	}
	return envelope{}
}

// clientsAnswer answers q with cs, encoded when q asks for it.
func clientsAnswer(q *envelope, cs []Client) envelope {
	if !q.Encoded {
		return envelope{Clients: cs}
	}
	l := encodeClients(cs)
	return envelope{encoded: &l}
}

// whereCache remembers which member held a client, so that a stream of
// messages to one client asks one member rather than all.
type whereCache struct {
	mu sync.Mutex
	m  map[string]string
}

const whereCacheSize = 100_000

func (w *whereCache) init() { w.m = make(map[string]string) }

func (w *whereCache) get(client string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m[client]
}

func (w *whereCache) put(client, node string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.m) >= whereCacheSize {
		clear(w.m) // cheap and rare: the next messages ask everyone once
	}
	w.m[client] = node
}

func (w *whereCache) forget(client string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, client)
}
