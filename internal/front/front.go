package front

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// readerSize is the front's reader, and so the largest header it serves:
// net/http's own reader size.
const readerSize = 4 << 10

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}

// Listener is what net/http serves: the connections the front hands on.
// It accepts from the listener it wraps in a goroutine of its own, which
// Accept starts, and serves the first request of the connections that
// ask for one of its paths itself.
type Listener struct {
	inner net.Listener
	hs    *http.Server
	paths []string
	// longest is the longest path's length: a target longer than that
	// with no end in sight is none of them.
	longest int
	ctx     context.Context

	// handed carries connections and accept errors to net/http. It is
	// unbuffered, so the accept loop waits while net/http backs off after
	// an error such as EMFILE.
	handed    chan accepted
	done      chan struct{}
	loopDone  chan struct{}
	start     sync.Once
	closeOnce sync.Once

	mu      sync.Mutex
	reading map[net.Conn]struct{} // first requests being read, for Close to end
	serving sync.WaitGroup
}

type accepted struct {
	c   net.Conn
	err error
}

// Listen returns a listener for hs to Serve: the front serves the first
// request of ln's connections to paths (exact paths, such as "/sse")
// with hs's Handler, and hands the rest on. The handler of those paths
// must be done with the reader a Hijack gives it when it returns: the
// front takes the reader back then, and what it buffered with it.
func Listen(ln net.Listener, hs *http.Server, paths ...string) *Listener {
	l := &Listener{
		inner: ln, hs: hs, paths: paths,
		ctx:      context.WithValue(context.Background(), http.ServerContextKey, hs),
		handed:   make(chan accepted),
		done:     make(chan struct{}),
		loopDone: make(chan struct{}),
		reading:  make(map[net.Conn]struct{}),
	}
	for _, p := range paths {
		l.longest = max(l.longest, len(p))
	}
	return l
}

// Accept returns the next connection net/http is to serve.
func (l *Listener) Accept() (net.Conn, error) {
	l.start.Do(func() { go l.loop() })
	select {
	case a := <-l.handed:
		return a.c, a.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Addr returns the wrapped listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close closes the wrapped listener and ends the reading of first
// requests. Handlers the front is running go on; Wait waits for them. It
// is safe to call more than once.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.inner.Close()
		l.mu.Lock()
		for c := range l.reading {
			c.SetReadDeadline(time.Unix(1, 0))
		}
		l.mu.Unlock()
	})
	return err
}

// Wait returns, after Close, once the accept loop and every handler the
// front ran have returned.
func (l *Listener) Wait() {
	l.start.Do(func() { close(l.loopDone) }) // never started
	<-l.loopDone
	l.serving.Wait()
}

func (l *Listener) loop() {
	defer close(l.loopDone)
	for {
		c, err := l.inner.Accept()
		if err != nil {
			select {
			case l.handed <- accepted{err: err}:
				continue
			case <-l.done:
				return
			}
		}
		l.serving.Add(1)
		go l.serve(c)
	}
}

func (l *Listener) serve(c net.Conn) {
	defer l.serving.Done()
	if !l.track(c) {
		c.Close()
		return
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(c)
	if d := l.headerTimeout(); d > 0 {
		c.SetReadDeadline(time.Now().Add(d))
	}
	ours, err := l.decide(br)
	l.untrack(c)
	switch {
	case err != nil:
		// Gone, or too slow, before its first line said where it goes.
		c.Close()
	case ours:
		l.serveFirst(c, br)
	default:
		l.handOn(c, br)
	}
	br.Reset(nil)
	readers.Put(br)
}

func (l *Listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		// Too late for Close to cut it. Otherwise Close, which closes
		// done before it takes mu, finds it in reading.
		return false
	default:
	}
	l.reading[c] = struct{}{}
	return true
}

func (l *Listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.reading, c)
	l.mu.Unlock()
}

// decide reads until the request's start shows whether the front serves
// it.
func (l *Listener) decide(br *bufio.Reader) (ours bool, err error) {
	window := readerSize
	if m := l.hs.MaxHeaderBytes; m > 0 {
		window = min(window, m)
	}
	for {
		_, err := br.Peek(br.Buffered() + 1)
		b, _ := br.Peek(br.Buffered())
		if ours, done := verdict(b, l.paths, l.longest, window); done {
			return ours, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// handOn gives c to net/http with the bytes the front read of it.
func (l *Listener) handOn(c net.Conn, br *bufio.Reader) {
	c.SetReadDeadline(time.Time{}) // net/http sets its own
	handed := c
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		handed = &replayConn{Conn: c, pre: bytes.Clone(b)}
	}
	select {
	case l.handed <- accepted{c: handed}:
	case <-l.done:
		c.Close()
	}
}

func (l *Listener) headerTimeout() time.Duration {
	if d := l.hs.ReadHeaderTimeout; d > 0 {
		return d
	}
	return l.hs.ReadTimeout
}

// replayConn reads the bytes the front read before the connection's own.
// It passes on what net/http and the transports look for on a TCP
// connection.
type replayConn struct {
	net.Conn
	pre []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// SyscallConn lets the transports write to and wait on the socket. By
// the time net/http hands the connection over, it has read pre.
func (c *replayConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// CloseWrite lets net/http half-close before closing.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

var (
	_ net.Listener                    = (*Listener)(nil)
	_ syscall.Conn                    = (*replayConn)(nil)
	_ interface{ CloseWrite() error } = (*replayConn)(nil)
)
