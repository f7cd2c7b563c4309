package wire

import (
	"errors"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pollLoop is one of a poller's loops.
type pollLoop struct {
	epollLoop
	timeout time.Duration

	mu     sync.Mutex
	next   uint64
	armed  map[uint64]pollEntry
	closed bool
}

type pollEntry struct {
	o     *Outbox
	since time.Time // the last progress, or when it backed up
}

// wakeID marks the eventfd's events; outboxes count from 1.
const wakeID = ^uint64(0)

func newPollLoop(timeout time.Duration) (*pollLoop, error) {
	e, err := openEpoll()
	if err != nil {
		return nil, err
	}
	p := &pollLoop{epollLoop: e, timeout: timeout, armed: make(map[uint64]pollEntry)}
	go p.run()
	return p, nil
}

// epollLoop is an epoll instance, with an eventfd in it that is written
// to stop the loop waiting on it; done closes once the loop has returned.
type epollLoop struct {
	epfd int
	wake int
	done chan struct{}
}

func openEpoll() (epollLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return epollLoop{}, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return epollLoop{}, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventID(&ev, wakeID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return epollLoop{}, err
	}
	return epollLoop{epfd: epfd, wake: wake, done: make(chan struct{})}, nil
}

// wait waits up to msec (-1: for ever) for events, and returns how many
// there are; a failure other than an interruption counts as none, after
// a pause.
func (e *epollLoop) wait(events []unix.EpollEvent, msec int) int {
	n, err := unix.EpollWait(e.epfd, events, msec)
	if err != nil && !errors.Is(err, unix.EINTR) {
		time.Sleep(10 * time.Millisecond)
		return 0
	}
	return max(n, 0)
}

// shut stops the loop and waits for it, then closes the instance.
func (e *epollLoop) shut() {
	one := [8]byte{1}
	unix.Write(e.wake, one[:])
	<-e.done
	unix.Close(e.epfd)
	unix.Close(e.wake)
}

// The 64 bits of an epoll event's data hold an outbox's ID.
func setEventID(ev *unix.EpollEvent, id uint64) { *(*uint64)(unsafe.Pointer(&ev.Fd)) = id }
func eventID(ev *unix.EpollEvent) uint64        { return *(*uint64)(unsafe.Pointer(&ev.Fd)) }

// arm has the loop write o once raw's socket has room. since is o's last
// progress. It reports false once the poller has stopped, or if the socket
// cannot be armed; o.mu must be held.
func (p *pollLoop) arm(o *Outbox, raw syscall.RawConn, since time.Time) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	if o.pollID == 0 {
		p.next++
		o.pollID = p.next
	}
	id := o.pollID
	p.armed[id] = pollEntry{o: o, since: since}
	p.mu.Unlock()
	op := armOps.Get().(*armOp)
	op.epfd = p.epfd
	op.ev = unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT}
	setEventID(&op.ev, id)
	err := raw.Control(op.fn)
	if err == nil {
		err = op.err
	}
	*op = armOp{fn: op.fn}
	armOps.Put(op)
	if err != nil {
		p.forget(id)
		return false
	}
	return true
}

// armOp is one arm's arguments and result, pooled as sendOp is: every
// write that backs up arms its socket.
type armOp struct {
	epfd int
	ev   unix.EpollEvent
	err  error
	fn   func(fd uintptr) // op.ctl
}

var armOps = sync.Pool{New: func() any {
	op := &armOp{}
	op.fn = op.ctl
	return op
}}

func (op *armOp) ctl(fd uintptr) {
	// Level-triggered: a socket that has room already fires at once.
	op.err = unix.EpollCtl(op.epfd, unix.EPOLL_CTL_MOD, int(fd), &op.ev)
	if errors.Is(op.err, unix.ENOENT) {
		op.err = unix.EpollCtl(op.epfd, unix.EPOLL_CTL_ADD, int(fd), &op.ev)
	}
}

// forget drops an outbox's registration; its socket leaves the epoll set
// when it is closed.
func (p *pollLoop) forget(id uint64) {
	p.mu.Lock()
	delete(p.armed, id)
	p.mu.Unlock()
}

func (p *pollLoop) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	sweep := time.Now()
	for {
		n := p.wait(events, 1000)
		for i := range n {
			id := eventID(&events[i])
			if id == wakeID {
				return
			}
			p.mu.Lock()
			e, ok := p.armed[id]
			delete(p.armed, id)
			p.mu.Unlock()
			if ok {
				e.o.writeReady(e.since)
			}
		}
		if now := time.Now(); now.Sub(sweep) >= time.Second {
			sweep = now
			p.closeStalled(now)
		}
	}
}

// closeStalled closes the connections armed with no progress for the
// write timeout.
func (p *pollLoop) closeStalled(now time.Time) {
	var stalled []*Outbox
	p.mu.Lock()
	for id, e := range p.armed {
		if now.Sub(e.since) >= p.timeout {
			delete(p.armed, id)
			stalled = append(stalled, e.o)
		}
	}
	p.mu.Unlock()
	for _, o := range stalled {
		o.Close(ErrWriteStalled)
	}
}

// stop ends the loop. Outboxes armed then, or later, fall back to a writer
// goroutine each.
func (p *pollLoop) stop() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	armed := p.armed
	p.armed = nil
	p.mu.Unlock()
	p.shut()
	for _, e := range armed {
		e.o.writeReady(e.since)
	}
}
