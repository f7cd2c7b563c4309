package wire

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrPeerNotReading closes a WebSocket whose peer pings but does not read:
// the library's answer to a ping found the queue full.
var ErrPeerNotReading = errors.New("wire: the peer does not read what it is sent")

// WS is a WebSocket's hijacked connection, shared by the node and
// coder/websocket, which does the handshake and reads. The node writes its
// own frames (unmasked server frames, each message's encoded once and
// shared by every subscriber given it, and its pings) the way an event
// stream is written: straight from the fan-out while the peer keeps up,
// and by the poller once it backs up, with no buffer or library call per
// connection in between. The library writes the frames it must (pongs, and
// the close handshake) through Write. Write gathers what it is given into
// whole frames, by the frame's own header, before one joins the node's
// queue, so the two never interleave within a frame, however the library
// buffers its writes; a close frame is written at once, after the rest of
// any frame part written, and nothing is written after it.
type WS struct {
	net.Conn // reads and Close, for the library
	socket
	box *Outbox

	mu sync.Mutex // held while writing
	// rest is the unwritten end of the frame last part written: whoever
	// writes next must write it first. Guarded by mu.
	rest    []byte
	stopped atomic.Bool // a close frame was written or waits for mu
	wrote   atomic.Bool // frames were written since Wrote was last asked

	libMu   sync.Mutex
	partial []byte // what the library wrote of a frame not yet whole; guarded by libMu
}

// SetOutbox makes Write queue the library's frames in box, behind the
// node's. Call it before the connection is served.
func (w *WS) SetOutbox(box *Outbox) { w.box = box }

// Raw returns the connection's descriptor for the poller and PeerWindow,
// or nil.
func (w *WS) Raw() syscall.RawConn { return w.raw }

// Wrote reports whether any of the node's frames reached the socket since
// it was last asked: a peer that takes them is reading.
func (w *WS) Wrote() bool { return w.wrote.Swap(false) }

// Write takes what the library writes: pongs, and its half of the close
// handshake.
func (w *WS) Write(p []byte) (int, error) {
	w.libMu.Lock()
	defer w.libMu.Unlock()
	buf := p
	if len(w.partial) > 0 {
		buf = append(w.partial, p...)
		w.partial = nil
	}
	for len(buf) > 0 {
		n, ok := frameLen(buf)
		if !ok || n > len(buf) {
			w.partial = bytes.Clone(buf) // the rest of the frame is to come
			break
		}
		if err := w.take(buf[:n:n]); err != nil {
			return len(p), err
		}
		buf = buf[n:]
	}
	return len(p), nil
}

// take queues one whole frame of the library's, or writes a close frame
// at once.
func (w *WS) take(frame []byte) error {
	if w.box != nil && !isCloseFrame(frame) {
		switch err := w.box.Add(func() Queued { return One(bytes.Clone(frame)) }); {
		case err == nil:
			return nil
		case errors.Is(err, ErrFull): // a peer that pings but does not read
			w.box.Close(ErrPeerNotReading)
			return nil
		}
	}
	_, err := w.writeNow(frame)
	return err
}

func isCloseFrame(p []byte) bool { return len(p) > 0 && p[0]&0x0f == 0x8 }

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

// WSRecorder hands the WebSocket library the connection as a WS, with
// buffers of its own in place of net/http's 4 KiB ones, which every idle
// connection would otherwise hold for as long as it is open: the library
// reads client frames, small JSON, and reads a payload larger than
// wsReadBuffer straight into the payload's buffer; it writes only control
// frames, which Write gathers whole whatever the buffer's size.
type WSRecorder struct {
	http.ResponseWriter
	timeout time.Duration
	wire    *WS
}

// NewWSRecorder wraps w for the library's Accept; timeout bounds each wait
// of a blocking write.
func NewWSRecorder(w http.ResponseWriter, timeout time.Duration) *WSRecorder {
	return &WSRecorder{ResponseWriter: w, timeout: timeout}
}

// Wire returns the connection once the library has hijacked it, else nil.
func (h *WSRecorder) Wire() *WS { return h.wire }

// Hijack hijacks the connection for the library.
func (h *WSRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return conn, brw, err
	}
	if err := brw.Writer.Flush(); err != nil { // net/http has flushed the 101 already
		conn.Close()
		return nil, nil, err
	}
	h.wire = &WS{Conn: conn, socket: newSocket(conn, h.timeout)}
	h.wire.stop = &h.wire.stopped
	// Bytes the client sent after its handshake stay buffered, where the
	// library looks for them.
	n := brw.Reader.Buffered()
	early, _ := brw.Reader.Peek(n)
	br := bufio.NewReaderSize(bytes.NewReader(bytes.Clone(early)), max(wsReadBuffer, n))
	br.Peek(n)
	return h.wire, bufio.NewReadWriter(br, bufio.NewWriterSize(h.wire, wsWriteBuffer)), nil
}

const wsReadBuffer = 512

// wsWriteBuffer is the library's write buffer: a control frame's header and
// longest payload, so that each is one Write, usually. Nothing depends on
// it: tests make it tiny.
var wsWriteBuffer = 2 + 125 + 1

// Unwrap returns the ResponseWriter wrapped.
func (h *WSRecorder) Unwrap() http.ResponseWriter { return h.ResponseWriter }
