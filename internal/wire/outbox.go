package wire

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"
)

// ErrClosed is returned by Outbox.Send once the connection is closed.
var ErrClosed = errors.New("wire: connection closed")

// Writer writes Queued frames to the wire, blocking as long as it takes
// (up to its write timeout). It is called from one goroutine at a time, in
// queue order.
type Writer interface {
	WriteFrames(qs []Queued) error
}

// DirectWriter is a Writer that can also try a write without blocking: it
// writes what the socket takes now and advances q past it. Fan-out then
// writes in the delivering goroutine, with no handoff, while the client
// keeps up; a backed-up client is written by the poller, or else by a
// writer goroutine.
type DirectWriter interface {
	TryWrite(q *Queued) error
}

// Closer is told, once, that an outbox closed and why: the connection is
// over. It must not block.
type Closer interface {
	CloseWire(reason error)
}

// Outbox is a connection's bounded queue of outgoing frames (complete wire
// bytes, Queued by reference). Only when the socket backs up is the queue
// handed to the poller (or, without one, a writer goroutine that exits when
// the queue is empty), so an idle connection holds no goroutine and no
// buffer here.
type Outbox struct {
	w      Writer
	direct DirectWriter // nil when the wire cannot write without blocking
	closer Closer
	max    int
	// Spawn starts the writer goroutine; nil means a plain go statement.
	// Set it before the first offer.
	Spawn func(func())
	// poll, when set, writes a backed-up socket instead of a writer
	// goroutine (raw is its descriptor); see Poller.
	poll   *Poller
	raw    syscall.RawConn
	loop   *pollLoop // the poller's loop for this outbox, once armed; guarded by mu
	pollID uint64    // its ID there; guarded by mu

	mu      sync.Mutex
	queue   []Queued
	size    int // unwritten bytes Queued
	writing bool
	closed  bool
	room    chan struct{} // closed and replaced whenever the queue drains
	// drainThenClose, when set while open, closes the outbox once its
	// queue is written; once closed, it is why (Reason).
	drainThenClose error
}

// NewOutbox returns an outbox of at most max unwritten bytes that writes
// with w and tells c when it closes.
func NewOutbox(w Writer, c Closer, max int) *Outbox {
	o := &Outbox{w: w, closer: c, max: max}
	o.direct, _ = w.(DirectWriter)
	return o
}

// UsePoller has p write the socket (raw is its descriptor) once it backs
// up, instead of a writer goroutine. Nil p, or nil raw, changes nothing.
// Call it before the first offer.
func (o *Outbox) UsePoller(p *Poller, raw syscall.RawConn) {
	if p == nil || raw == nil || o.direct == nil {
		return
	}
	o.mu.Lock()
	o.poll, o.raw = p, raw
	o.mu.Unlock()
}

// Offer queues frame unless it would overflow the queue. A closed outbox
// accepts and drops it: its client reconnects and resumes.
func (o *Outbox) Offer(frame []byte) bool {
	return o.OfferWith(func() Queued { return One(frame) })
}

// OfferWith is Offer for a frame that must be built in queue order: build
// runs under the queue's lock. If it does not fit, false is returned and the
// connection is expected to be kicked, so build's effects need no undoing.
func (o *Outbox) OfferWith(build func() Queued) bool {
	return !errors.Is(o.Add(build), ErrFull)
}

// ErrFull: a frame did not fit the queue.
var ErrFull = errors.New("wire: queue full")

// Add is OfferWith telling a closed outbox, which queues nothing
// (ErrClosed), from a full one (ErrFull).
func (o *Outbox) Add(build func() Queued) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return ErrClosed
	}
	q := build()
	if o.size > 0 && o.size+q.size > o.max {
		o.mu.Unlock()
		return ErrFull
	}
	err := o.put(q)
	o.mu.Unlock()
	if err != nil {
		o.Close(err)
	}
	return nil
}

// Send queues frame once the queue has room, waiting for the writer.
func (o *Outbox) Send(ctx context.Context, frame []byte) error {
	return o.SendWith(ctx, func() Queued { return One(frame) })
}

// SendWith is Send for a frame that must be built in queue order: build
// runs under the queue's lock, once there is room.
func (o *Outbox) SendWith(ctx context.Context, build func() Queued) error {
	for {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return ErrClosed
		}
		if o.size < o.max {
			err := o.put(build())
			o.mu.Unlock()
			if err != nil {
				o.Close(err)
				return ErrClosed
			}
			return nil
		}
		if o.room == nil {
			o.room = make(chan struct{})
		}
		room := o.room
		o.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// put writes q straight to the socket when nothing is Queued ahead of it,
// and queues what the socket did not take. o.mu must be held.
func (o *Outbox) put(q Queued) error {
	if o.direct != nil && !o.writing {
		// Through the interface q would escape: an allocation per offer.
		p := queuedPool.Get().(*Queued)
		*p = q
		err := o.direct.TryWrite(p)
		q, *p = *p, Queued{}
		queuedPool.Put(p)
		if err != nil {
			return err
		}
		if q.left() == 0 {
			return nil
		}
	}
	o.queue = append(o.queue, q)
	o.size += q.left()
	if !o.writing {
		o.writing = true
		if o.poll == nil || !o.poll.arm(o, o.raw, time.Now()) {
			o.startWriter()
		}
	}
	return nil
}

// startWriter starts the writer goroutine. o.mu must be held.
func (o *Outbox) startWriter() {
	if o.Spawn != nil {
		o.Spawn(o.flush)
	} else {
		go o.flush()
	}
}

// writeReady is the poller's write: what the socket takes now, without
// blocking, in queue order. It arms the poller again while frames are
// left, and ends the writing when none are. since is the last progress.
func (o *Outbox) writeReady(since time.Time) {
	o.mu.Lock()
	var err error
	for len(o.queue) > 0 && !o.closed {
		q := &o.queue[0]
		left := q.left()
		err = o.direct.TryWrite(q)
		if n := left - q.left(); n > 0 {
			o.size -= n
			since = time.Now()
		}
		if err != nil || q.left() > 0 {
			break
		}
		o.queue[0] = Queued{}
		o.queue = o.queue[1:]
	}
	if o.room != nil && o.size < o.max {
		close(o.room)
		o.room = nil
	}
	if err == nil && !o.closed && len(o.queue) > 0 {
		if !o.poll.arm(o, o.raw, since) {
			o.startWriter() // the poller has stopped
		}
		o.mu.Unlock()
		return
	}
	o.writing = false
	o.queue = nil
	reason := o.drainThenClose
	o.mu.Unlock()
	switch {
	case err != nil:
		o.Close(err)
	case reason != nil:
		o.Close(reason)
	}
}

func (o *Outbox) flush() {
	for {
		o.mu.Lock()
		frames := o.queue
		o.queue, o.size = nil, 0
		if o.room != nil {
			close(o.room)
			o.room = nil
		}
		if len(frames) == 0 || o.closed {
			o.writing = false
			reason := o.drainThenClose
			o.mu.Unlock()
			if reason != nil {
				o.Close(reason)
			}
			return
		}
		o.mu.Unlock()
		if err := o.w.WriteFrames(frames); err != nil {
			o.Close(err)
		}
	}
}

// CloseAfterFlush closes the outbox once what is Queued has been written.
func (o *Outbox) CloseAfterFlush(reason error) {
	if reason == nil {
		reason = ErrClosed
	}
	o.mu.Lock()
	if o.closed { // already over: its reason stays the first one
		o.mu.Unlock()
		return
	}
	idle := !o.writing
	o.drainThenClose = reason
	o.mu.Unlock()
	if idle {
		o.Close(reason)
	}
}

// Close marks the outbox closed and closes the wire once; later frames are
// dropped. It does not block on the writer.
func (o *Outbox) Close(reason error) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	o.closed, o.drainThenClose = true, reason
	o.queue, o.size = nil, 0
	if o.pollID != 0 {
		o.loop.forget(o.pollID)
	}
	if o.room != nil {
		close(o.room)
		o.room = nil
	}
	o.mu.Unlock()
	o.closer.CloseWire(reason)
	return true
}

// Drop forgets what is queued, as if it had been written, and ends the
// writing: for benchmarks of the delivery path that must keep a socket
// backed up without writing it.
func (o *Outbox) Drop() {
	o.mu.Lock()
	clear(o.queue)
	o.queue, o.size, o.writing = o.queue[:0], 0, false
	o.mu.Unlock()
}

// Reason is why the outbox closed: the reason given to Close, or nil
// while it is open.
func (o *Outbox) Reason() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.closed {
		return nil
	}
	return o.drainThenClose
}

// IsClosed reports whether Close was called.
func (o *Outbox) IsClosed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}
