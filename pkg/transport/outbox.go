package transport

import (
	"context"
	"errors"
	"sync"
)

// errClosed is returned by outbox.send once the connection is closed.
var errClosed = errors.New("transport: connection closed")

// frameWriter writes a batch of frames to the wire, blocking as long as it
// takes (up to its write timeout). It is called from one goroutine at a
// time, in queue order.
type frameWriter interface {
	writeFrames(frames [][]byte) error
	closeWire(reason error)
}

// directWriter is a frameWriter that can also try a write without blocking:
// it writes what the socket takes now and returns how much. Fan-out then
// writes in the delivering goroutine, with no handoff, while the client
// keeps up; only a backed-up client gets a writer goroutine.
type directWriter interface {
	tryWrite(frame []byte) (int, error)
}

// outbox is a connection's bounded queue of outgoing frames (complete wire
// bytes). A writer goroutine is started only when the socket backs up and
// exits when the queue is empty, so an idle connection holds no goroutine
// and no buffer here.
type outbox struct {
	w      frameWriter
	direct directWriter // nil when the wire cannot write without blocking
	max    int
	// spawn starts the writer goroutine; nil means a plain go statement.
	spawn func(func())

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
	o := &outbox{w: w, max: max}
	o.direct, _ = w.(directWriter)
	return o
}

// offer queues frame unless it would overflow the queue. A closed outbox
// accepts and drops it: its client reconnects and resumes.
func (o *outbox) offer(frame []byte) bool {
	return o.offerWith(func() []byte { return frame })
}

// offerWith is offer for a frame that must be built in queue order: build
// runs under the queue's lock. If it does not fit, false is returned and the
// connection is expected to be kicked, so build's effects need no undoing.
func (o *outbox) offerWith(build func() []byte) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return true
	}
	frame := build()
	if o.size > 0 && o.size+len(frame) > o.max {
		o.mu.Unlock()
		return false
	}
	err := o.put(frame)
	o.mu.Unlock()
	if err != nil {
		o.close(err)
	}
	return true
}

// send queues frame once the queue has room, waiting for the writer.
func (o *outbox) send(ctx context.Context, frame []byte) error {
	return o.sendWith(ctx, func() []byte { return frame })
}

// sendWith is send for a frame that must be built in queue order: build
// runs under the queue's lock, once there is room.
func (o *outbox) sendWith(ctx context.Context, build func() []byte) error {
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

// put writes frame straight to the socket when nothing is queued ahead of
// it, and queues what the socket did not take. o.mu must be held.
func (o *outbox) put(frame []byte) error {
	if o.direct != nil && !o.writing {
		n, err := o.direct.tryWrite(frame)
		if err != nil {
			return err
		}
		if n == len(frame) {
			return nil
		}
		frame = frame[n:]
	}
	o.queue = append(o.queue, frame)
	o.size += len(frame)
	if !o.writing {
		o.writing = true
		if o.spawn != nil {
			o.spawn(o.flush)
		} else {
			go o.flush()
		}
	}
	return nil
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
