package front

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

const (
	// maxAnswer bounds an answer that does not take the connection over:
	// on the front's routes an error of a few hundred bytes.
	maxAnswer = 64 << 10
	// answerTimeout bounds writing one, unless the server's WriteTimeout
	// is set.
	answerTimeout = 10 * time.Second
	// closeLinger is how long an answered connection is read, after it is
	// half-closed, before it is closed: closing with bytes unread resets
	// the connection, and the client might lose the answer. net/http
	// waits as long.
	closeLinger = 500 * time.Millisecond
)

var errAnswerTooLarge = errors.New("front: an answer that does not take the connection over is kept to 64 KiB")

// response is the ResponseWriter of a request the front serves. A handler
// that does not take the connection over is answered once it returns,
// whole, with Connection: close.
type response struct {
	conn     net.Conn
	br       *bufio.Reader
	hs       *http.Server
	header   http.Header
	status   int
	body     []byte
	hijacked bool
}

func (w *response) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.hijacked || w.status != 0 || code < 200 {
		return
	}
	w.status = code
}

func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if len(w.body)+len(p) > maxAnswer {
		return 0, errAnswerTooLarge
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// Hijack hands the handler the connection, and the reader with what the
// client sent after its request. The handler must be done with the
// reader when it returns.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.status != 0 {
		return nil, nil, errors.New("front: the answer has begun: the connection cannot be taken over")
	}
	w.hijacked = true
	w.conn.SetDeadline(time.Time{})
	return w.conn, bufio.NewReadWriter(w.br, bufio.NewWriterSize(w.conn, 64)), nil
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error  { return w.conn.SetReadDeadline(t) }
func (w *response) SetWriteDeadline(t time.Time) error { return w.conn.SetWriteDeadline(t) }

// reply answers with a plain-text error, as net/http answers a request it
// cannot read.
func (w *response) reply(code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.status, w.body = code, []byte(text)
	w.finish()
}

// finish writes the answer the handler left and closes the connection.
func (w *response) finish() {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	h := w.Header()
	if bodyAllowed(status) {
		if _, typed := h["Content-Type"]; !typed && len(w.body) > 0 {
			h.Set("Content-Type", http.DetectContentType(w.body))
		}
		h.Set("Content-Length", strconv.Itoa(len(w.body)))
	} else {
		w.body = nil
		h.Del("Content-Length")
	}
	h.Set("Connection", "close")
	if _, dated := h["Date"]; !dated {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	text := http.StatusText(status)
	if text == "" {
		text = "status code " + strconv.Itoa(status)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %03d %s\r\n", status, text)
	h.Write(&b)
	b.WriteString("\r\n")
	b.Write(w.body)
	timeout := w.hs.WriteTimeout
	if timeout <= 0 {
		timeout = answerTimeout
	}
	w.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := w.conn.Write(b.Bytes()); err == nil {
		linger(w.conn)
	}
	w.conn.Close()
}

// linger half-closes c and reads what the client still sends, briefly,
// so that closing it does not reset the connection under the answer.
func linger(c net.Conn) {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(closeLinger))
	io.Copy(io.Discard, io.LimitReader(c, maxAnswer))
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

var (
	_ http.ResponseWriter = (*response)(nil)
	_ http.Hijacker       = (*response)(nil)
)
