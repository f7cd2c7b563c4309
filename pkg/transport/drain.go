package transport

import (
	"math/rand/v2"
	"time"
)

// drainStep is the mean time between two batches of a drain.
const drainStep = 200 * time.Millisecond

// drain ends every connection in randomly spaced batches of randomly
// chosen connections over timeout, so that their clients do not all
// reconnect to the other nodes at once, and then whatever is left. New
// connections that arrive meanwhile (the load balancer has not yet seen
// /readyz fail) join the later batches.
func (s *Server) drain(timeout time.Duration) {
	s.BeginDrain()
	deadline := time.Now().Add(timeout)
	for {
		left := s.notEnding()
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
		s.endAll(left[:n], errDrain)
		s.stats.drained.Add(uint64(n))
		time.Sleep(min(remaining, time.Duration(float64(drainStep)*(0.5+rand.Float64()))))
	}
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	left := s.notEnding()
	s.endAll(left, errShutdown)
	s.stats.drained.Add(uint64(len(left)))
}

// DrainTimeout is how long a drain spreads the ends of the connections over.
func (s *Server) DrainTimeout() time.Duration { return s.cfg.DrainTimeout }

// BeginDrain makes /readyz fail, so load balancers stop sending clients,
// ahead of the drain itself, and sends new streams on (see sendingOn).
func (s *Server) BeginDrain() { s.draining.Store(true) }

// SetIsolated marks the node cut off from Redis and the cluster, or no
// longer: new streams are sent on while it is.
func (s *Server) SetIsolated(on bool) { s.isolated.Store(on) }

// Isolated reports whether SetIsolated(true) is in force.
func (s *Server) Isolated() bool { return s.isolated.Load() }

// sendingOn reports whether new streams are sent to other nodes rather
// than served: the node is draining or isolated. The load balancer has not
// yet seen /readyz fail, or cannot; a client sent on at once loses nothing
// and waits no drain.
func (s *Server) sendingOn() bool { return s.draining.Load() || s.isolated.Load() }

// Shed ends up to n randomly chosen connections so that their clients
// reconnect, through the load balancer, to less loaded nodes. It returns
// how many it ended.
func (s *Server) Shed(n int) int {
	left := s.notEnding()
	n = min(n, len(left))
	for i := range n { // a partial Fisher-Yates: the first n are a random choice
		j := i + rand.IntN(len(left)-i)
		left[i], left[j] = left[j], left[i]
	}
	s.endAll(left[:n], errShed)
	s.stats.shed.Add(uint64(n))
	return n
}

// notEnding returns the tracked connections not yet being ended.
func (s *Server) notEnding() []client {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]client, 0, len(s.clients))
	for c := range s.clients {
		if _, ok := s.ending[c]; !ok {
			out = append(out, c)
		}
	}
	return out
}

func (s *Server) endAll(cs []client, reason error) {
	s.mu.Lock()
	for _, c := range cs {
		s.ending[c] = struct{}{}
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.end(reason)
	}
}
