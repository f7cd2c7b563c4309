package transport

import (
	"container/heap"
	"sync"
	"time"
)

// expiryEntry is a connection's place in the server's expiry queue; it
// lives in the connection, so scheduling allocates nothing.
type expiryEntry struct {
	at    int64 // Unix nanoseconds
	index int   // position in the heap, from 1; 0 when not queued
}

// expiries ends connections at their token's expiry from one timer for
// the whole server. One runtime timer per connection (time.AfterFunc)
// costs about 140 bytes of live heap, twice that in RSS, on an idle
// connection of under 7 KiB; a queue entry costs 32. The queue is a
// container/heap ordered by expiry. Safe for concurrent use.
type expiries struct {
	mu    sync.Mutex
	q     expiryQueue
	timer *time.Timer
}

// add schedules c to expire at at; a zero at (a credential that never
// expires) schedules nothing.
func (e *expiries) add(c *conn, at time.Time) {
	if at.IsZero() {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c.expiryEntry().at = at.UnixNano()
	heap.Push(&e.q, c)
	e.arm()
}

// remove unschedules c. It reports false when c was not queued: it never
// was, or its expiry is already under way.
func (e *expiries) remove(c *conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	ent := c.expiryEntry()
	if ent.index == 0 {
		return false
	}
	heap.Remove(&e.q, ent.index-1)
	e.arm()
	return true
}

// fire expires every connection that is due, outside the lock.
func (e *expiries) fire() {
	now := time.Now().UnixNano()
	var due []*conn
	e.mu.Lock()
	for len(e.q) > 0 && e.q[0].expiryEntry().at <= now {
		due = append(due, heap.Pop(&e.q).(*conn))
	}
	e.arm()
	e.mu.Unlock()
	for _, c := range due {
		c.expire()
	}
}

// arm sets the timer to the earliest expiry; e.mu is held.
func (e *expiries) arm() {
	if len(e.q) == 0 {
		if e.timer != nil {
			e.timer.Stop()
		}
		return
	}
	d := time.Until(time.Unix(0, e.q[0].expiryEntry().at))
	if e.timer == nil {
		e.timer = time.AfterFunc(d, e.fire)
		return
	}
	e.timer.Reset(d)
}

// expiryQueue implements heap.Interface, keeping each entry's index.
type expiryQueue []*conn

func (q expiryQueue) Len() int { return len(q) }
func (q expiryQueue) Less(i, j int) bool {
	return q[i].expiryEntry().at < q[j].expiryEntry().at
}
func (q expiryQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].expiryEntry().index = i + 1
	q[j].expiryEntry().index = j + 1
}
func (q *expiryQueue) Push(x any) {
	c := x.(*conn)
	c.expiryEntry().index = len(*q) + 1
	*q = append(*q, c)
}
func (q *expiryQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	c.expiryEntry().index = 0
	return c
}
