package transport

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

)

// sseWire writes an event stream. It hijacks the connection from net/http
// when it can, so the server's per-request buffers and goroutine are freed.
type sseWire struct {
	socket  // conn is nil when not hijacked
	w       http.ResponseWriter
	rc      *http.ResponseController
	chunked bool
	onClose func()
	once    sync.Once
}

const sseHeader = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/event-stream; charset=utf-8\r\n" +
	"Cache-Control: no-cache\r\n" +
	"X-Accel-Buffering: no\r\n"

func openSSE(w http.ResponseWriter, r *http.Request, timeout time.Duration) (*sseWire, error) {
	wire := &sseWire{socket: socket{timeout: timeout}}
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
	_, err := w.write(qs)
	return err
}

// tryWrite writes what the socket takes of q now, without blocking.
func (w *sseWire) tryWrite(q *queued) error {
	_, err := w.try(q)
	return err
}

func (w *sseWire) writeResponse(qs []queued) error {
	w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	if _, err := writeEach(qs, w.w); err != nil {
		return err
	}
	return w.rc.Flush()
}

// writeEach writes the parts of qs to w one by one, advancing them, and
// returns the bytes written.
func writeEach(qs []queued, w io.Writer) (int, error) {
	written := 0
	var err error
	for i := range qs {
		n := 0
		qs[i].each(func(b []byte) bool {
			var m int
			m, err = w.Write(b)
			n += m
			return err == nil
		})
		qs[i].advance(n)
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
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
