package transport

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"
)

// errClosed is returned by outbox.send once the connection is closed.
var errClosed = errors.New("transport: connection closed")

// frameWriter writes queued frames to the wire, blocking as long as it
// takes (up to its write timeout). It is called from one goroutine at a
// time, in queue order.
type frameWriter interface {
	writeFrames(q []queued) error
	closeWire(reason error)
}

// directWriter is a frameWriter that can also try a write without blocking:
// it writes what the socket takes now and advances q past it. Fan-out then
// writes in the delivering goroutine, with no handoff, while the client
// keeps up; a backed-up client is written by the poller, or else by a
// writer goroutine.
type directWriter interface {
	tryWrite(q *queued) error
}

// queued is what one offer queues: a frame, or a run of frames that other
// connections share and that is only ever read. A burst therefore costs a
// connection one of these, not a copy of the burst. A wire that writes part
// of it advances it.
type queued struct {
	frame  []byte   // when frames is nil
	frames [][]byte // shared: never written to
	size   int      // bytes in all
	done   int      // bytes written
	at     int      // frames[at] is the first not wholly written
	off    int      // bytes of frames[at], or of frame, written
}

func one(frame []byte) queued { return queued{frame: frame, size: len(frame)} }

func run(frames [][]byte) queued {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	return queued{frames: frames, size: n}
}

// left is how many bytes of q are still to write.
func (q *queued) left() int { return q.size - q.done }

// advance records n more bytes of q written.
func (q *queued) advance(n int) {
	q.done += n
	if q.frames == nil {
		q.off += n
		return
	}
	for n > 0 {
		rest := len(q.frames[q.at]) - q.off
		if n < rest {
			q.off += n
			return
		}
		n -= rest
		q.at, q.off = q.at+1, 0
	}
}

// partWritten is the unwritten end of the frame q is part way through, or
// nil when q is at the start of a frame.
func (q *queued) partWritten() []byte {
	switch {
	case q.off == 0:
		return nil
	case q.frames == nil:
		return q.frame[q.off:]
	}
	return q.frames[q.at][q.off:]
}

// each calls f with every unwritten part of q, in order, until f returns
// false.
func (q *queued) each(f func([]byte) bool) {
	if q.frames == nil {
		if q.off < len(q.frame) {
			f(q.frame[q.off:])
		}
		return
	}
	off := q.off
	for _, b := range q.frames[q.at:] {
		if off < len(b) && !f(b[off:]) {
			return
		}
		off = 0
	}
}

var queuedPool = sync.Pool{New: func() any { return new(queued) }}

// outbox is a connection's bounded queue of outgoing frames (complete wire
// bytes, queued by reference). Only when the socket backs up is the queue
// handed to the poller (or, without one, a writer goroutine that exits when
// the queue is empty), so an idle connection holds no goroutine and no
// buffer here.
type outbox struct {
	w      frameWriter
	direct directWriter // nil when the wire cannot write without blocking
	max    int
	// spawn starts the writer goroutine; nil means a plain go statement.
	spawn func(func())
	// poll, when set, writes a backed-up socket instead of a writer
	// goroutine (raw is its descriptor); see poller.
	poll   *poller
	raw    syscall.RawConn
	loop   *pollLoop // the poller's loop for this outbox, once armed; guarded by mu
	pollID uint64    // its ID there; guarded by mu

	mu      sync.Mutex
	queue   []queued
	size    int // unwritten bytes queued
	writing bool
	closed  bool
	room    chan struct{} // closed and replaced whenever the queue drains
	// drainThenClose, when set, closes the outbox once its queue is written.
	drainThenClose error
}

func newOutbox(w frameWriter, max int) *outbox {
	o := &outbox{w: w, max: max}
	o.direct, _ = w.(directWriter)
	return o
}

// offer queues frame unless it would overflow the queue. A closed outbox
// accepts and drops it: its client reconnects and resumes.
func (o *outbox) offer(frame []byte) bool {
	return o.offerWith(func() queued { return one(frame) })
}

// offerWith is offer for a frame that must be built in queue order: build
// runs under the queue's lock. If it does not fit, false is returned and the
// connection is expected to be kicked, so build's effects need no undoing.
func (o *outbox) offerWith(build func() queued) bool {
	return !errors.Is(o.add(build), errFull)
}

// errFull: a frame did not fit the queue.
var errFull = errors.New("transport: queue full")

// add is offerWith telling a closed outbox, which queues nothing, from a
// full one.
func (o *outbox) add(build func() queued) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return errClosed
	}
	q := build()
	if o.size > 0 && o.size+q.size > o.max {
		o.mu.Unlock()
		return errFull
	}
	err := o.put(q)
	o.mu.Unlock()
	if err != nil {
		o.close(err)
	}
	return nil
}

// send queues frame once the queue has room, waiting for the writer.
func (o *outbox) send(ctx context.Context, frame []byte) error {
	return o.sendWith(ctx, func() queued { return one(frame) })
}

// sendWith is send for a frame that must be built in queue order: build
// runs under the queue's lock, once there is room.
func (o *outbox) sendWith(ctx context.Context, build func() queued) error {
	for {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return errClosed
		}
		if o.size < o.max {
			err := o.put(build())
			o.mu.Unlock()
			if err != nil {
				o.close(err)
				return errClosed
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

// put writes q straight to the socket when nothing is queued ahead of it,
// and queues what the socket did not take. o.mu must be held.
func (o *outbox) put(q queued) error {
	if o.direct != nil && !o.writing {
		// Through the interface q would escape: an allocation per offer.
		p := queuedPool.Get().(*queued)
		*p = q
		err := o.direct.tryWrite(p)
		q, *p = *p, queued{}
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
func (o *outbox) startWriter() {
	if o.spawn != nil {
		o.spawn(o.flush)
	} else {
		go o.flush()
	}
}

// writeReady is the poller's write: what the socket takes now, without
// blocking, in queue order. It arms the poller again while frames are
// left, and ends the writing when none are. since is the last progress.
func (o *outbox) writeReady(since time.Time) {
	o.mu.Lock()
	var err error
	for len(o.queue) > 0 && !o.closed {
		q := &o.queue[0]
		left := q.left()
		err = o.direct.tryWrite(q)
		if n := left - q.left(); n > 0 {
			o.size -= n
			since = time.Now()
		}
		if err != nil || q.left() > 0 {
			break
		}
		o.queue[0] = queued{}
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
		o.close(err)
	case reason != nil:
		o.close(reason)
	}
}

func (o *outbox) flush() {
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
				o.close(reason)
			}
			return
		}
		o.mu.Unlock()
		if err := o.w.writeFrames(frames); err != nil {
			o.close(err)
		}
	}
}

// closeAfterFlush closes the outbox once what is queued has been written.
func (o *outbox) closeAfterFlush(reason error) {
	if reason == nil {
		reason = errClosed
	}
	o.mu.Lock()
	idle := !o.writing
	o.drainThenClose = reason
	o.mu.Unlock()
	if idle {
		o.close(reason)
	}
}

// close marks the outbox closed and closes the wire once; later frames are
// dropped. It does not block on the writer.
func (o *outbox) close(reason error) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	o.closed = true
	o.queue, o.size = nil, 0
	if o.pollID != 0 {
		o.loop.forget(o.pollID)
	}
	if o.room != nil {
		close(o.room)
		o.room = nil
	}
	o.mu.Unlock()
	o.w.closeWire(reason)
	return true
}

// isClosed reports whether close was called.
func (o *outbox) isClosed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}
