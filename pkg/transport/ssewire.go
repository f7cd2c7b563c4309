package transport

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
	"unsafe"
)

// sseWire writes an event stream. It hijacks the connection from net/http
// when it can, so the server's per-request buffers and goroutine are freed.
type sseWire struct {
	conn    net.Conn // nil when not hijacked
	raw     syscall.RawConn
	w       http.ResponseWriter
	rc      *http.ResponseController
	chunked bool
	timeout time.Duration
	onClose func()
	once    sync.Once
}

const sseHeader = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/event-stream; charset=utf-8\r\n" +
	"Cache-Control: no-cache\r\n" +
	"X-Accel-Buffering: no\r\n"

func openSSE(w http.ResponseWriter, r *http.Request, timeout time.Duration) (*sseWire, error) {
	wire := &sseWire{timeout: timeout}
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
func (w *sseWire) hijacked(conn net.Conn, brw *bufio.ReadWriter, r *http.Request, set http.Header) (*sseWire, error) {
	w.conn = conn
	if sc, ok := conn.(syscall.Conn); ok {
		w.raw, _ = sc.SyscallConn()
	}
	header := sseHeader
	if r.ProtoAtLeast(1, 1) {
		w.chunked = true
		header += "Transfer-Encoding: chunked\r\n"
	} else {
		header = strings.Replace(header, "HTTP/1.1", "HTTP/1.0", 1) + "Connection: close\r\n"
	}
	header += extraHeader(set)
	brw.Reader.Reset(nil)
	if err := w.writeFrames([]queued{one([]byte(header + "\r\n"))}); err != nil {
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

func (w *sseWire) writeFrames(qs []queued) error {
	if w.conn == nil {
		return w.writeResponse(qs)
	}
	// The deadline bounds each wait for the socket to take more, not the
	// whole write, which for a burst may be megabytes; it is cleared after,
	// as a deadline left behind would fail the direct writes that follow.
	w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	defer w.conn.SetWriteDeadline(time.Time{})
	if w.raw == nil { // TLS: no descriptor to write vectors to
		return writeEach(qs, w.conn)
	}
	return w.send(qs, true)
}

// tryWrite writes what the socket takes of q now, without blocking.
func (w *sseWire) tryWrite(q *queued) error {
	if w.raw == nil {
		return nil
	}
	return w.send(unsafe.Slice(q, 1), false) // advances q itself
}

// send makes write system calls on the non-blocking descriptor: until all
// of qs is written when wait is set, waiting for the socket to take more
// under the write deadline, which each write that takes some moves on;
// else until one is short.
func (w *sseWire) send(qs []queued, wait bool) error {
	var err error
	if rerr := w.raw.Write(func(fd uintptr) bool {
		for len(qs) > 0 {
			n, all, werr := writev(int(fd), qs)
			switch werr {
			case nil:
				qs = advance(qs, n)
				switch {
				case len(qs) == 0:
				case wait:
					w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
				case !all:
					return true // the socket is full
				}
			case syscall.EINTR:
			case syscall.EAGAIN:
				return !wait // wait: until the socket takes more, or the deadline
			default:
				err = werr
				return true
			}
		}
		return true
	}); rerr != nil {
		return rerr
	}
	return err
}

func (w *sseWire) writeResponse(qs []queued) error {
	w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	if err := writeEach(qs, w.w); err != nil {
		return err
	}
	return w.rc.Flush()
}

// writeEach writes the parts of qs to w one by one.
func writeEach(qs []queued, w io.Writer) error {
	var err error
	for i := range qs {
		qs[i].each(func(b []byte) bool {
			_, err = w.Write(b)
			return err == nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// sseEnd is the last chunk of a chunked response: the stream ends
// cleanly, and the browser reconnects after its retry time.
var sseEnd = []byte("0\r\n\r\n")

// endsCleanly reports whether a stream closed for reason gets its last
// chunk. Only ends on purpose do: they come after the queue is flushed, so
// no writer holds the socket, while a kicked slow consumer's writer may be
// blocked in a write.
func endsCleanly(reason error) bool {
	for _, r := range []error{errDrain, errShed, errDisconnected, errShutdown, errTokenExpired} {
		if errors.Is(reason, r) {
			return true
		}
	}
	return false
}

func (w *sseWire) closeWire(reason error) {
	w.once.Do(func() {
		if w.conn != nil {
			if w.chunked && endsCleanly(reason) {
				end := one(sseEnd)
				w.tryWrite(&end) // best effort: a full socket is a client that is going anyway
			}
			w.conn.Close()
		}
		w.onClose()
	})
}

// watch makes a hijacked connection notice its client going away: one
// goroutine parked on a one-byte read closes it and runs cleanup, and the
// handler may return. An unhijacked stream is watched by its handler.
func (w *sseWire) watch(spawn func(func()), cleanup func()) {
	if w.conn == nil {
		return
	}
	spawn(func() {
		var b [1]byte
		for {
			if _, err := w.conn.Read(b[:]); err != nil {
				break
			}
		}
		w.closeWire(nil)
		cleanup()
	})
}
