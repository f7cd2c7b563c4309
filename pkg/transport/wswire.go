package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pushcluster/pushcluster/pkg/hub"
)

// wsWire is a WebSocket's hijacked connection, shared by the node and
// coder/websocket. The node writes its own frames (unmasked server frames,
// each message's encoded once and shared by every subscriber given it) the
// way an event stream is written: straight from the fan-out while the peer
// keeps up, and by a writer parked in the poller once it backs up, with no
// buffer or library call per connection in between. The library still
// reads, answers pings, sends the node's pings and closes; its frames
// reach Write whole, as it flushes its buffer at the end of every frame and
// writes only control frames here (at most 127 bytes, in a buffer that
// holds them; see hijackRecorder).
// They join the same queue, so no frame is ever split by another. A close
// frame is written at once, after the rest of any frame part written, and
// nothing is written after it.
type wsWire struct {
	net.Conn // reads and Close, for the library
	socket
	box *outbox // set before the connection is served

	mu sync.Mutex // held while writing
	// rest is the unwritten end of the frame last part written: whoever
	// writes next must write it first. Guarded by mu.
	rest    []byte
	stopped atomic.Bool // a close frame was written or waits for mu
	wrote   atomic.Bool // frames were written since the last heartbeat
}

// hijackRecorder hands the WebSocket library the connection as a wsWire,
// with buffers of its own in place of net/http's 4 KiB ones, which every
// idle connection would otherwise hold for as long as it is open: the
// library writes only control frames, each whole into wsWriteBuffer and
// flushed at its end; it reads client frames, small JSON, and reads a
// payload larger than wsReadBuffer straight into the payload's buffer.
type hijackRecorder struct {
	http.ResponseWriter
	timeout time.Duration
	wire    *wsWire
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return conn, brw, err
	}
	if err := brw.Writer.Flush(); err != nil { // net/http has flushed the 101 already
		conn.Close()
		return nil, nil, err
	}
	h.wire = &wsWire{Conn: conn, socket: newSocket(conn, h.timeout)}
	h.wire.stop = &h.wire.stopped
	// Bytes the client sent after its handshake stay buffered, where the
	// library looks for them.
	n := brw.Reader.Buffered()
	early, _ := brw.Reader.Peek(n)
	br := bufio.NewReaderSize(bytes.NewReader(bytes.Clone(early)), max(wsReadBuffer, n))
	br.Peek(n)
	return h.wire, bufio.NewReadWriter(br, bufio.NewWriterSize(h.wire, wsWriteBuffer)), nil
}

const (
	wsReadBuffer  = 512
	wsWriteBuffer = 2 + 125 + 1 // a control frame's header and longest payload
)

func (h *hijackRecorder) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Write takes a frame from the library.
func (w *wsWire) Write(p []byte) (int, error) {
	if w.box != nil && !isCloseFrame(p) {
		switch err := w.box.add(func() queued { return one(bytes.Clone(p)) }); {
		case err == nil:
			return len(p), nil
		case errors.Is(err, errFull): // a peer that pings but does not read
			w.box.close(hub.ErrSlowConsumer)
			return len(p), nil
		}
	}
	return w.writeNow(p)
}

func isCloseFrame(p []byte) bool { return len(p) > 0 && p[0]&0x0f == 0x8 }

// writeNow writes a frame past the queue, which from now on is not
// written: the queue is closed, or the frame closes the connection.
func (w *wsWire) writeNow(p []byte) (int, error) {
	w.stopped.Store(true)
	w.mu.Lock()
	defer w.mu.Unlock()
	qs := []queued{one(w.rest), one(p)}
	s := w.socket
	s.stop = nil // the stop is for the queue's writes, not this one
	_, err := s.write(qs)
	w.rest = nil
	if err != nil {
		return len(p) - qs[1].left(), err
	}
	return len(p), nil
}

// tryWrite writes what the socket takes of q now, without blocking.
func (w *wsWire) tryWrite(q *queued) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped.Load() {
		return errClosed
	}
	n, err := w.try(q)
	w.noteWritten(unsafe.Slice(q, 1), n)
	return err
}

// writeFrames writes qs, blocking, until they are written, the write times
// out or a close frame waits.
func (w *wsWire) writeFrames(qs []queued) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped.Load() {
		return errClosed
	}
	n, err := w.write(qs)
	w.noteWritten(qs, n)
	return err
}

// noteWritten records a write of n bytes of qs: that the peer took some, and
// the rest of a frame it left part written. w.mu must be held.
func (w *wsWire) noteWritten(qs []queued, n int) {
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

// wsText frames payload as one text frame from a server: final, unmasked
// (RFC 6455 section 5.2).
func wsText(payload []byte) []byte {
	var h [10]byte
	h[0] = 0x81 // FIN, text
	n := len(payload)
	hl := 2
	switch {
	case n < 126:
		h[1] = byte(n)
	case n <= 0xffff:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
		hl = 4
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
		hl = 10
	}
	b := make([]byte, hl+n)
	copy(b, h[:hl])
	copy(b[hl:], payload)
	return b
}
