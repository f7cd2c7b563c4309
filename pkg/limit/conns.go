package limit

import (
	"net/netip"
	"sync"
)

// Conns counts open connections per client address. It is safe for
// concurrent use; the zero value is not: use NewConns.
type Conns struct {
	max int
	mu  sync.Mutex
	n   map[netip.Addr]int
}

// NewConns bounds each address to max connections; max <= 0 means no bound.
func NewConns(max int) *Conns { return &Conns{max: max, n: make(map[netip.Addr]int)} }

// Acquire takes a connection slot for a, or reports false when a holds
// all of its slots. Every true is paired with one Release.
func (c *Conns) Acquire(a netip.Addr) bool {
	if c.max <= 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[a] >= c.max {
		return false
	}
	c.n[a]++
	return true
}

// Release gives back a slot taken by Acquire.
func (c *Conns) Release(a netip.Addr) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[a] <= 1 {
		delete(c.n, a)
		return
	}
	c.n[a]--
}
