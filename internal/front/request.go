package front

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"runtime"
	"time"

	"golang.org/x/net/http/httpguts"
)

const method = "GET "

// verdict reads the start b of a request: whether the front serves it,
// and whether b shows that yet. A request is the front's when it is a GET
// of one of paths (followed by a query or not) in HTTP/1.1 whose header
// ends within window bytes. longest is the longest path's length.
func verdict(b []byte, paths []string, longest, window int) (ours, done bool) {
	if len(b) < len(method) {
		return false, !bytes.HasPrefix([]byte(method), b)
	}
	if string(b[:len(method)]) != method {
		return false, true
	}
	target := b[len(method):]
	end := bytes.IndexAny(target, " ?\r\n")
	if end < 0 {
		return false, len(target) > longest || !prefixOfOne(target, paths)
	}
	if !isOne(target[:end], paths) {
		return false, true
	}
	head := min(len(b), window)
	blank := bytes.Index(b[:head], []byte("\n\n"))
	if crlf := bytes.Index(b[:head], []byte("\n\r\n")); crlf >= 0 && (blank < 0 || crlf < blank) {
		blank = crlf
	}
	if blank < 0 {
		return false, len(b) >= window
	}
	line := b[:bytes.IndexByte(b, '\n')]
	return bytes.HasSuffix(bytes.TrimSuffix(line, []byte("\r")), []byte(" HTTP/1.1")), true
}

func isOne(path []byte, paths []string) bool {
	for _, p := range paths {
		if string(path) == p {
			return true
		}
	}
	return false
}

func prefixOfOne(b []byte, paths []string) bool {
	for _, p := range paths {
		if len(b) <= len(p) && string(b) == p[:len(b)] {
			return true
		}
	}
	return false
}

// serveFirst serves the request br starts with, the front's.
func (l *Listener) serveFirst(c net.Conn, br *bufio.Reader) {
	r, err := readRequest(br)
	if err != nil {
		w := &response{conn: c, hs: l.hs}
		w.reply(http.StatusBadRequest, "400 Bad Request: "+err.Error())
		return
	}
	c.SetReadDeadline(time.Time{})
	r.RemoteAddr = c.RemoteAddr().String()
	w := &response{conn: c, br: br, hs: l.hs}
	if !l.handle(w, r) {
		if !w.hijacked {
			c.Close()
		}
		return
	}
	if !w.hijacked {
		w.finish()
	}
}

// readRequest reads a request as net/http's server does: a Host is
// required, and header names and values must be valid.
func readRequest(br *bufio.Reader) (*http.Request, error) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	if r.Host == "" {
		return nil, errors.New("missing required Host header")
	}
	if !httpguts.ValidHostHeader(r.Host) {
		return nil, errors.New("malformed Host header")
	}
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, errors.New("invalid header name")
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, errors.New("invalid header value")
			}
		}
	}
	return r, nil
}

// handle runs the server's handler for r with its own context, which
// ends when the handler returns. It reports false when the handler
// panicked; the panic is logged as net/http logs one.
func (l *Listener) handle(w *response, r *http.Request) (ok bool) {
	ctx, cancel := context.WithCancel(l.ctx)
	defer cancel()
	r = r.WithContext(ctx)
	defer func() {
		if p := recover(); p != nil {
			ok = false
			if p == http.ErrAbortHandler {
				return
			}
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			l.logf("http: panic serving %v: %v\n%s", r.RemoteAddr, p, buf)
		}
	}()
	h := l.hs.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	h.ServeHTTP(w, r)
	return true
}

func (l *Listener) logf(format string, args ...any) {
	if l.hs.ErrorLog != nil {
		l.hs.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}
