package wire

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SSE writes an event stream. It hijacks the connection from net/http
// when it can, so the server's per-request buffers and goroutine are freed.
type SSE struct {
	socket  // conn is nil when not hijacked
	w       http.ResponseWriter
	rc      *http.ResponseController
	chunked bool
	// OnClose, when set, is called once the stream is closed.
	OnClose func()
	once    sync.Once
	// watch is the stream's watch when a watcher waits for its client's
	// end; spawn runs cleanup once the stream is closed.
	watch   Watch
	spawn   func(func())
	cleanup func()
}

const sseHeader = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/event-stream; charset=utf-8\r\n" +
	"Cache-Control: no-cache\r\n" +
	"X-Accel-Buffering: no\r\n"

// OpenSSE answers r with an event stream's header: 200, hijacked from
// net/http and chunked on HTTP/1.1, written through w on HTTP/2. timeout
// bounds each wait of a blocking write.
func OpenSSE(w http.ResponseWriter, r *http.Request, timeout time.Duration) (*SSE, error) {
	wire := &SSE{socket: socket{timeout: timeout}}
	rc := http.NewResponseController(w)
	if r.ProtoMajor == 1 {
		conn, brw, err := rc.Hijack()
		if err == nil {
			return wire.hijacked(conn, brw, r, w.Header())
		}
	}
	// A hijacked connection sheds the server's deadlines; this one keeps
	// them, and a stream must outlive its request's read timeout.
	rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	wire.w, wire.rc = w, rc
	return wire, rc.Flush()
}

// hijacked writes the response header by hand. Headers set on the
// ResponseWriter before the hijack (CORS, by rs/cors) go into it too.
func (w *SSE) hijacked(conn net.Conn, brw *bufio.ReadWriter, r *http.Request, set http.Header) (*SSE, error) {
	w.socket = newSocket(conn, w.timeout)
	header := sseHeader
	if r.ProtoAtLeast(1, 1) {
		w.chunked = true
		header += "Transfer-Encoding: chunked\r\n"
	} else {
		header = strings.Replace(header, "HTTP/1.1", "HTTP/1.0", 1) + "Connection: close\r\n"
	}
	header += extraHeader(set)
	brw.Reader.Reset(nil)
	if err := w.WriteFrames([]Queued{One([]byte(header + "\r\n"))}); err != nil {
		conn.Close()
		return nil, err
	}
	return w, nil
}

// extraHeader renders the headers a middleware set, leaving out those the
// stream's own header has; Header.Write drops line breaks from values.
func extraHeader(set http.Header) string {
	if len(set) == 0 {
		return ""
	}
	h := set.Clone()
	for _, k := range []string{"Content-Type", "Cache-Control", "X-Accel-Buffering", "Transfer-Encoding", "Connection", "Content-Length"} {
		h.Del(k)
	}
	var b strings.Builder
	h.Write(&b)
	return b.String()
}

// Chunked reports whether frames must carry HTTP/1.1 chunk framing: the
// connection was hijacked and speaks HTTP/1.1.
func (w *SSE) Chunked() bool { return w.chunked }

// Hijacked reports whether the stream owns its connection.
func (w *SSE) Hijacked() bool { return w.conn != nil }

// Raw returns the connection's descriptor for the poller, or nil.
func (w *SSE) Raw() syscall.RawConn { return w.raw }

// WriteFrames writes qs, blocking.
func (w *SSE) WriteFrames(qs []Queued) error {
	if w.conn == nil {
		return w.writeResponse(qs)
	}
	_, err := w.write(qs)
	return err
}

// TryWrite writes what the socket takes of q now, without blocking.
func (w *SSE) TryWrite(q *Queued) error {
	_, err := w.try(q)
	return err
}

func (w *SSE) writeResponse(qs []Queued) error {
	w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	if _, err := writeEach(qs, w.w); err != nil {
		return err
	}
	return w.rc.Flush()
}

// sseEnd is the last chunk of a chunked response: the stream ends
// cleanly, and the browser reconnects after its retry time.
var sseEnd = []byte("0\r\n\r\n")

// Close closes the stream once. A clean close writes the last chunk of a
// chunked stream first, so the browser sees the stream end and reconnects
// after its retry time: only ends on purpose should, after the queue is
// flushed, as no writer then holds the socket (a kicked slow consumer's
// writer may be blocked in a write).
func (w *SSE) Close(clean bool) {
	w.once.Do(func() {
		if w.conn != nil {
			if w.chunked && clean {
				end := One(sseEnd)
				w.TryWrite(&end) // best effort: a full socket is a client that is going anyway
			}
			w.conn.Close()
		}
		if w.OnClose != nil {
			w.OnClose()
		}
		if w.watch.loop != nil { // no reader to notice the close
			w.watch.Stop()
			w.spawn(w.cleanup)
		}
	})
}

// Watch makes a hijacked connection notice its client going away, and
// run cleanup once it is closed, whoever closes it; the handler may then
// return. With a watcher, the socket waits in its epoll set, with no
// goroutine: what a client sends on a stream is read and dropped as it
// comes, and its end closes the stream. Without one (no epoll, or no
// descriptor), one goroutine, started with spawn, is parked on a one-byte
// read. An unhijacked stream is watched by its handler.
func (w *SSE) Watch(watcher *Watcher, spawn func(func()), cleanup func()) {
	if w.conn == nil {
		return
	}
	w.spawn, w.cleanup = spawn, cleanup
	if watcher.Watch(&w.watch, w.raw, w.readable) {
		return
	}
	w.watch = Watch{}
	spawn(func() {
		var b [1]byte
		for {
			if _, err := w.conn.Read(b[:]); err != nil {
				break
			}
		}
		w.Close(false)
		cleanup()
	})
}

// readable reads what the client sent, without blocking, and drops it, up
// to a bound per wake-up, so one client cannot hold its loop; the stream
// is closed at its end. It runs on the watcher's loop.
func (w *SSE) readable() {
	op := drainOps.Get().(*drainOp)
	for range 16 {
		op.n, op.err = 0, nil
		err := w.raw.Read(op.fn)
		if err == nil {
			err = op.err
		}
		if err == nil && op.n > 0 {
			continue
		}
		drainOps.Put(op)
		if errors.Is(err, syscall.EAGAIN) && w.watch.Rearm() {
			return
		}
		w.Close(false) // the end of the stream, an error, or the socket closed
		return
	}
	drainOps.Put(op)
	if !w.watch.Rearm() {
		w.Close(false)
	}
}

// drainOp is one non-blocking read into a buffer it owns, pooled: a
// stream's reads are dropped, and an idle stream has none to keep.
type drainOp struct {
	buf [512]byte
	n   int
	err error
	fn  func(fd uintptr) bool // op.read
}

var drainOps = sync.Pool{New: func() any {
	op := &drainOp{}
	op.fn = op.read
	return op
}}

func (op *drainOp) read(fd uintptr) bool {
	n, err := readNow(fd, op.buf[:])
	switch {
	case err != nil:
		op.err = err
	case n == 0:
		op.err = io.EOF
	}
	op.n = max(n, 0)
	return true
}
