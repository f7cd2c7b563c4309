package wire

import (
	"runtime"
	"sync/atomic"
	"syscall"
)

// Watcher tells idle connections that their socket has something to
// read, or that their peer hung up, from one goroutine per CPU (a loop
// each, with its own epoll instance), so an idle connection holds no
// goroutine parked in a read, nor a read buffer: its reader is started
// when there is something to read, and returns once it has read it.
// Every read of a connection is one-shot: the watch fires once, and is
// armed again by whoever read (Watch.Rearm).
//
// Hand-written for the reasons Poller is: Go's runtime poller can only
// wake a goroutine parked in a read, and the event-loop libraries that
// expose epoll own the listener and the connections, which here belong
// to net/http until they are hijacked. It is the Poller's twin, not a
// part of it, since a socket sits in one epoll instance once: the
// Poller's is armed for writes and disarmed by each event, this one for
// reads, each on its own schedule.
type Watcher struct {
	loops []*watchLoop
	next  atomic.Uint32
}

// NewWatcher starts a loop per CPU. It fails where the platform has no
// epoll: each connection then waits for its reads in a goroutine.
func NewWatcher() (*Watcher, error) {
	w := &Watcher{}
	for range runtime.GOMAXPROCS(0) {
		l, err := newWatchLoop()
		if err != nil {
			w.Stop()
			return nil, err
		}
		w.loops = append(w.loops, l)
	}
	return w, nil
}

// Watch is one connection's watch: ready is called, from a loop that
// must not wait on it, once raw's socket has something to read or its
// peer hung up, and not again until Rearm.
type Watch struct {
	loop  *watchLoop
	id    uint64
	raw   syscall.RawConn
	ready func()
}

// Watch arms a watch of raw's socket that calls ready once there is
// something to read. It reports false when it cannot (no epoll, the
// watcher stopped, the socket closed): the caller then reads in a
// goroutine of its own. A nil Watcher cannot.
func (w *Watcher) Watch(h *Watch, raw syscall.RawConn, ready func()) bool {
	if w == nil || len(w.loops) == 0 || raw == nil {
		return false
	}
	h.loop = w.loops[int(w.next.Add(1))%len(w.loops)]
	h.raw, h.ready = raw, ready
	return h.loop.add(h)
}

// Rearm has ready called again once there is something (more) to read.
// It reports false once the socket is closed, or the watcher stopped.
func (h *Watch) Rearm() bool { return h.loop.rearm(h) }

// Stop forgets the watch: ready is not called again. Closing the socket
// takes it out of the epoll set.
func (h *Watch) Stop() {
	if h.loop != nil {
		h.loop.forget(h.id)
	}
}

// Stop ends every loop; the watches armed then are never called. Stop a
// watcher once every connection it watches is closed.
func (w *Watcher) Stop() {
	for _, l := range w.loops {
		l.stop()
	}
}
