package wire

import (
	"sync"

	"golang.org/x/sys/unix"
)

// watchLoop is one of a watcher's loops.
type watchLoop struct {
	epollLoop

	mu      sync.Mutex
	next    uint64
	watches map[uint64]*Watch
	closed  bool
}

func newWatchLoop() (*watchLoop, error) {
	e, err := openEpoll()
	if err != nil {
		return nil, err
	}
	l := &watchLoop{epollLoop: e, watches: make(map[uint64]*Watch)}
	go l.run()
	return l, nil
}

// watchEvents: readable, or the peer shut its side (a FIN with nothing
// left to read, which a plain EPOLLIN also reports); once.
const watchEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

func (l *watchLoop) add(h *Watch) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.next++
	h.id = l.next
	l.watches[h.id] = h
	l.mu.Unlock()
	if !l.ctl(h, unix.EPOLL_CTL_ADD) {
		l.forget(h.id)
		return false
	}
	return true
}

func (l *watchLoop) rearm(h *Watch) bool {
	l.mu.Lock()
	_, ok := l.watches[h.id]
	ok = ok && !l.closed
	l.mu.Unlock()
	return ok && l.ctl(h, unix.EPOLL_CTL_MOD)
}

// ctl adds or rearms h's socket; through the RawConn, so a socket being
// closed is never confused with a descriptor reused since.
func (l *watchLoop) ctl(h *Watch, op int) bool {
	c := watchOps.Get().(*watchOp)
	c.epfd, c.op = l.epfd, op
	c.ev = unix.EpollEvent{Events: watchEvents}
	setEventID(&c.ev, h.id)
	err := h.raw.Control(c.fn)
	if err == nil {
		err = c.err
	}
	*c = watchOp{fn: c.fn}
	watchOps.Put(c)
	return err == nil
}

// watchOp is one epoll_ctl's arguments and result, pooled as armOp is:
// every read of every connection rearms its watch.
type watchOp struct {
	epfd, op int
	ev       unix.EpollEvent
	err      error
	fn       func(fd uintptr) // op.ctl
}

var watchOps = sync.Pool{New: func() any {
	c := &watchOp{}
	c.fn = c.ctl
	return c
}}

func (c *watchOp) ctl(fd uintptr) { c.err = unix.EpollCtl(c.epfd, c.op, int(fd), &c.ev) }

func (l *watchLoop) forget(id uint64) {
	l.mu.Lock()
	delete(l.watches, id)
	l.mu.Unlock()
}

func (l *watchLoop) run() {
	defer close(l.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n := l.wait(events, -1)
		for i := range n {
			id := eventID(&events[i])
			if id == wakeID {
				return
			}
			l.mu.Lock()
			h := l.watches[id]
			l.mu.Unlock()
			if h != nil {
				h.ready()
			}
		}
	}
}

func (l *watchLoop) stop() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.watches = nil
	l.mu.Unlock()
	l.shut()
}
