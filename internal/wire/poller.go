package wire

import (
	"errors"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrWriteStalled closes a connection whose socket took nothing for the
// write timeout.
var ErrWriteStalled = errors.New("wire: the peer took nothing for the write timeout")

// Poller writes the sockets of backed-up connections from one goroutine
// per CPU (a loop each, with its own epoll instance; a connection keeps
// the loop it was first given). A connection whose socket is full is armed
// for one EPOLLOUT, and written without blocking when the kernel says it
// has room, until its queue is empty. One loop alone would copy every
// backed-up byte on one CPU. A writer goroutine
// per backed-up connection, parked in Go's poller, would hold a stack of
// several KiB each: at 10,000 subscribers a burst behind, more than the
// burst itself. The write timeout is a sweep: a connection armed with no
// progress for that long is closed.
//
// Hand-written because Go's runtime poller can only wake a goroutine, and
// the event-loop libraries that expose epoll own the listener and the
// connections, which here belong to net/http and coder/websocket.
type Poller struct {
	loops []*pollLoop
	next  atomic.Uint32
}

// NewPoller starts a loop per CPU, each with a write timeout of its own
// sweep. It fails where the platform has no epoll: each backed-up
// connection then gets a writer goroutine.
func NewPoller(timeout time.Duration) (*Poller, error) {
	p := &Poller{}
	for range runtime.GOMAXPROCS(0) {
		l, err := newPollLoop(timeout)
		if err != nil {
			p.Stop()
			return nil, err
		}
		p.loops = append(p.loops, l)
	}
	return p, nil
}

// arm has a loop write o once raw's socket has room; see pollLoop.arm.
func (p *Poller) arm(o *Outbox, raw syscall.RawConn, since time.Time) bool {
	if o.loop == nil {
		o.loop = p.loops[int(p.next.Add(1))%len(p.loops)]
	}
	return o.loop.arm(o, raw, since)
}

// Stop ends every loop: outboxes armed then, or later, fall back to a
// writer goroutine each. Stop a poller once every connection it writes is
// closed, as it waits for their last writes.
func (p *Poller) Stop() {
	for _, l := range p.loops {
		l.stop()
	}
}
