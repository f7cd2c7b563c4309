package wire

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// ErrPeerNotReading closes a WebSocket whose peer pings but does not read:
// the library's answer to a ping found the queue full.
var ErrPeerNotReading = errors.New("wire: the peer does not read what it is sent")

// WS is a WebSocket's hijacked connection. The node writes its frames
// (unmasked server frames, each message's encoded once and shared by
// every subscriber given it, its pings and pongs) the way an event stream
// is written: straight from the fan-out while the peer keeps up, and by
// the poller once it backs up, with no buffer per connection in between.
// A pong joins the queue behind the node's frames, so the two never
// interleave within a frame; a close frame is written at once, after the
// rest of any frame part written, and nothing is written after it. What
// the client sends is read a message at a time (ReadMessage), when there
// is something to read: an idle WebSocket holds no reader and no buffer.
type WS struct {
	net.Conn // reads, deadlines and Close
	socket
	box *Outbox

	mu sync.Mutex // held while writing
	// rest is the unwritten end of the frame last part written: whoever
	// writes next must write it first. Guarded by mu.
	rest    []byte
	stopped atomic.Bool // a close frame was written or waits for mu
	wrote   atomic.Bool // frames were written since Wrote was last asked

	watch Watch
}

// SetOutbox makes Pong queue pongs in box, behind the node's frames. Call
// it before the connection is served.
func (w *WS) SetOutbox(box *Outbox) { w.box = box }

// Raw returns the connection's descriptor for the poller, the watcher and
// PeerWindow, or nil.
func (w *WS) Raw() syscall.RawConn { return w.raw }

// Wrote reports whether any of the node's frames reached the socket since
// it was last asked: a peer that takes them is reading.
func (w *WS) Wrote() bool { return w.wrote.Swap(false) }

// Pong answers a ping with its payload, behind what is queued. A peer that
// pings but lets its queue fill does not read: it is closed.
func (w *WS) Pong(payload []byte) {
	frame := wsFrame(opPong, payload)
	if err := w.box.Add(func() Queued { return One(frame) }); errors.Is(err, ErrFull) {
		w.box.Close(ErrPeerNotReading)
	}
}

// WriteClose writes a close frame with code and reason past the queue,
// which from now on is not written.
func (w *WS) WriteClose(code uint16, reason string) error {
	if len(reason) > maxCloseReason {
		reason = reason[:maxCloseReason]
	}
	body := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), code)
	_, err := w.writeNow(wsFrame(opClose, append(body, reason...)))
	return err
}

// maxCloseReason keeps a close frame's payload within a control frame's
// 125 bytes.
const maxCloseReason = 123

// writeNow writes a frame past the queue, which from now on is not
// written: the queue is closed, or the frame closes the connection.
func (w *WS) writeNow(p []byte) (int, error) {
	w.stopped.Store(true)
	w.mu.Lock()
	defer w.mu.Unlock()
	qs := []Queued{One(w.rest), One(p)}
	s := w.socket
	s.stop = nil // the stop is for the queue's writes, not this one
	_, err := s.write(qs)
	w.rest = nil
	if err != nil {
		return len(p) - qs[1].left(), err
	}
	return len(p), nil
}

// Watch has watcher call ready once the client has sent something: see
// Watcher. It reports false when it cannot; the caller then reads in a
// goroutine of its own.
func (w *WS) Watch(watcher *Watcher, ready func()) bool {
	if watcher.Watch(&w.watch, w.raw, ready) {
		return true
	}
	w.watch = Watch{}
	return false
}

// Rearm has the watcher call ready again once there is more to read;
// false when the connection is not watched, or is closed.
func (w *WS) Rearm() bool { return w.watch.loop != nil && w.watch.Rearm() }

// Pending reports whether the client has sent something not yet read,
// without waiting: a reader started for bytes another already read
// would otherwise wait for the next message.
func (w *WS) Pending() bool {
	if w.raw == nil {
		return true
	}
	return pending(w.raw)
}

// StopWatching forgets the connection's watch, once it is closed.
func (w *WS) StopWatching() { w.watch.Stop() }

// TryWrite writes what the socket takes of q now, without blocking.
func (w *WS) TryWrite(q *Queued) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped.Load() {
		return ErrClosed
	}
	n, err := w.try(q)
	w.noteWritten(oneOf(q), n)
	return err
}

// WriteFrames writes qs, blocking, until they are written, the write times
// out or a close frame waits.
func (w *WS) WriteFrames(qs []Queued) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped.Load() {
		return ErrClosed
	}
	n, err := w.write(qs)
	w.noteWritten(qs, n)
	return err
}

// noteWritten records a write of n bytes of qs: that the peer took some, and
// the rest of a frame it left part written. w.mu must be held.
func (w *WS) noteWritten(qs []Queued, n int) {
	if n > 0 && !w.wrote.Load() {
		w.wrote.Store(true)
	}
	w.rest = nil
	for i := range qs {
		if qs[i].left() > 0 {
			w.rest = qs[i].partWritten()
			return
		}
	}
}
