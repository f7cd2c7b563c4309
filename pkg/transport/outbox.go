package transport

import (
	"context"
	"errors"
	"sync"
)

// errClosed is returned by outbox.send once the connection is closed.
var errClosed = errors.New("transport: connection closed")

// frameWriter writes a batch of frames to the wire. It is called from one
// goroutine at a time, in queue order.
type frameWriter interface {
	writeFrames(frames [][]byte) error
	closeWire(reason error)
}

// outbox is a connection's bounded queue of outgoing frames. A writer
// goroutine is started when frames arrive and exits when the queue is empty,
// so an idle connection holds no goroutine and no buffer here.
type outbox struct {
	w   frameWriter
	max int

	mu      sync.Mutex
	queue   [][]byte
	size    int
	writing bool
	closed  bool
	room    chan struct{} // closed and replaced whenever the queue drains
	// drainThenClose, when set, closes the outbox once its queue is written.
	drainThenClose error
}

func newOutbox(w frameWriter, max int) *outbox {
	return &outbox{w: w, max: max}
}

// offer queues frames unless they would overflow the queue. A closed outbox
// accepts and drops them: its client reconnects and resumes.
func (o *outbox) offer(frames ...[]byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return true
	}
	n := sizeOf(frames)
	if o.size > 0 && o.size+n > o.max {
		return false
	}
	o.push(frames, n)
	return true
}

// offerWith is offer for frames that must be built in queue order: build
// runs under the queue's lock. If they do not fit, false is returned and the
// connection is expected to be kicked, so build's effects need no undoing.
func (o *outbox) offerWith(build func() [][]byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return true
	}
	frames := build()
	n := sizeOf(frames)
	if o.size > 0 && o.size+n > o.max {
		return false
	}
	o.push(frames, n)
	return true
}

// send queues frames once the queue has room, waiting for the writer.
func (o *outbox) send(ctx context.Context, frames ...[]byte) error {
	return o.sendWith(ctx, func() [][]byte { return frames })
}

// sendWith is send for frames that must be built in queue order: build runs
// under the queue's lock, once there is room.
func (o *outbox) sendWith(ctx context.Context, build func() [][]byte) error {
	for {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return errClosed
		}
		if o.size < o.max {
			frames := build()
			o.push(frames, sizeOf(frames))
			o.mu.Unlock()
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

// push appends frames; o.mu must be held.
func (o *outbox) push(frames [][]byte, n int) {
	o.queue = append(o.queue, frames...)
	o.size += n
	if !o.writing {
		o.writing = true
		go o.flush()
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

func sizeOf(frames [][]byte) int {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	return n
}
