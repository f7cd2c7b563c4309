package transport

import (
	"errors"
	"net/netip"
	"slices"
	"strings"

	"github.com/pushcluster/pushcluster/pkg/cluster"
)

// Reasons a connection is ended on purpose. Each ends it cleanly after
// what is queued has been written: an SSE stream is finished (the browser
// reconnects after its retry time), a WebSocket gets a close code.
var (
	// errShutdown: the node is stopping now.
	errShutdown = errors.New("transport: node shutting down")
	// errDrain: the node is draining before it stops.
	errDrain = errors.New("transport: node draining")
	// errShed: the node carries more than its share of the cluster.
	errShed = errors.New("transport: moved to even out the cluster's load")
	// errDisconnected: POST /api/disconnect asked for it.
	errDisconnected = errors.New("transport: disconnected by the server")
)

// client is a connection the server tracks: for heartbeats, shutdown and
// cluster questions. Its methods must not block.
type client interface {
	heartbeat()
	// end closes the connection for reason once what is queued is written.
	end(reason error)
	info() cluster.Client
	// subscribedTo reports whether the connection listens on channel.
	subscribedTo(channel string) bool
	// direct queues a message to this one connection; false when its
	// queue is full or it is closed.
	direct(m cluster.Direct) bool
	// address is the client address its connection slot is counted under.
	address() netip.Addr
}

var _ cluster.Local = (*Server)(nil)

// Load returns the node's connection counts for the cluster's gossip.
func (s *Server) Load() cluster.Load {
	return cluster.Load{
		SSE: int(s.stats.sse.Load()), WS: int(s.stats.ws.Load()),
		Subscriptions: int(s.cfg.Hub.Subscriptions()),
	}
}

// Draining reports whether the node is draining its connections.
func (s *Server) Draining() bool { return s.draining.Load() }

// Presence lists the local clients subscribed to channel.
func (s *Server) Presence(channel string) []cluster.Client {
	out := []cluster.Client{}
	for _, c := range s.snapshot() {
		if c.subscribedTo(channel) {
			out = append(out, c.info())
		}
	}
	return out
}

// Clients lists up to limit local clients whose IDs sort after after.
func (s *Server) Clients(after string, limit int) []cluster.Client {
	var out []cluster.Client
	for _, c := range s.snapshot() {
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
func (s *Server) Deliver(client string, m cluster.Direct) int {
	n := 0
	for _, c := range s.connsOf(client) {
		if c.direct(m) {
			n++
		}
	}
	if n > 0 {
		s.stats.direct.Add(uint64(n))
	}
	return n
}

// Disconnect ends every local connection of client.
func (s *Server) Disconnect(client string) int {
	conns := s.connsOf(client)
	for _, c := range conns {
		c.end(errDisconnected)
	}
	return len(conns)
}

func (s *Server) connsOf(client string) []client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.byID[client])
}
