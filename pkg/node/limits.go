package node

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pushcluster/pushcluster/internal/fdlimit"
	"github.com/pushcluster/pushcluster/internal/ratelog"
	"github.com/pushcluster/pushcluster/pkg/transport"
)

// Defaults for the node's connection limits.
const (
	// DefaultSpareConnections is how many connections the listener accepts
	// beyond MaxConnections, for health checks, metrics, publishes and
	// history while every stream slot is taken.
	DefaultSpareConnections = 128
	// fdReserve is kept back from clients, beyond the Redis pool's own
	// descriptors (twice: with the embedded store, both ends are ours): the
	// doorbell's pub/sub, the listener, the debug server, logs.
	fdReserve = 64
	// refusalsAtOnce bounds the refused connections answered at a time;
	// beyond it a refused connection is closed without an answer.
	refusalsAtOnce = 32
	// refusalLinger is how long a refused connection is kept to deliver
	// the answer before its request is read and discarded.
	refusalLinger = time.Second
	logEvery      = 10 * time.Second
)

// RetryAfterSeconds is the Retry-After of a connection refused at the limit.
const RetryAfterSeconds = transport.RetryAfterSeconds

// refusal answers a connection the listener cannot take. Retry-After says
// when to come back (a load balancer may pick another node at once).
var refusal = func() string {
	body := `{"error":{"code":"too_many_connections","message":"the node is at its connection limit"}}` + "\n"
	return "HTTP/1.1 503 Service Unavailable\r\n" +
		"Retry-After: " + strconv.Itoa(RetryAfterSeconds) + "\r\n" +
		"Content-Type: application/json\r\n" +
		"Cache-Control: no-store\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}()

// raiseFileLimit lifts the open-file limit to the hard limit, logs it, and
// returns the limit now in force (0 if unknown).
func raiseFileLimit(log *slog.Logger) uint64 {
	from, to, err := fdlimit.Raise()
	if err != nil {
		log.Warn("cannot raise the open-file limit", "limit", from, "err", err)
		return from
	}
	log.Info("open-file limit at the hard limit", "limit", to, "was", from)
	return to
}

// connectionLimits returns how many streams (SSE and WebSocket connections)
// the node holds and how many connections its listener accepts in all.
// Streams default to what the open-file limit leaves once Redis, the node
// itself and the spare connections have theirs; spare may shrink to fit.
func connectionLimits(fdLimit uint64, streams, spare, redisPool int) (int, int) {
	if streams > 0 {
		return streams, streams + spare
	}
	avail := int(min(fdLimit, 1<<30)) - 2*redisPool - fdReserve
	if avail < 2 {
		avail = max(int(fdLimit)/2, 2)
	}
	spare = min(spare, avail/2)
	return avail - spare, avail
}

// limitListener accepts at most max connections at once. One more is
// answered 503 with Retry-After on the spot and closed, so that a node at
// its limit keeps the descriptors it needs for what it already serves.
// Accept errors are returned (net/http backs off on EMFILE and ENFILE,
// 5 ms doubling to 1 s), and logged at a bounded rate.
type limitListener struct {
	net.Listener
	max  int64
	open atomic.Int64
	log  *slog.Logger

	refused    atomic.Uint64
	refusing   chan struct{}
	refusals   sync.WaitGroup
	refusedLog *ratelog.Limiter
	acceptLog  *ratelog.Limiter
}

func newLimitListener(ln net.Listener, max int, log *slog.Logger) *limitListener {
	return &limitListener{
		Listener: ln, max: int64(max), log: log,
		refusing:   make(chan struct{}, refusalsAtOnce),
		refusedLog: ratelog.New(logEvery), acceptLog: ratelog.New(logEvery),
	}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.acceptFailed(err)
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refuse(c)
	}
}

func (l *limitListener) acceptFailed(err error) {
	if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) {
		return
	}
	if n, ok := l.acceptLog.Allow(); ok {
		l.log.Error("out of file descriptors: cannot accept connections; backing off",
			"err", err, "times", n, "open", l.open.Load())
	}
}

// Refused returns how many connections the listener refused.
func (l *limitListener) Refused() uint64 { return l.refused.Load() }

func (l *limitListener) refuse(c net.Conn) {
	l.refused.Add(1)
	if n, ok := l.refusedLog.Allow(); ok {
		l.log.Warn("refused connections: at the connection limit", "refused", n, "limit", l.max)
	}
	select {
	case l.refusing <- struct{}{}:
	default:
		c.Close()
		return
	}
	l.refusals.Add(1)
	go func() {
		defer func() {
			<-l.refusing
			l.refusals.Done()
		}()
		answerRefused(c)
	}()
}

// answerRefused writes the refusal and closes c once the peer has had it:
// closing with its request unread would reset the connection, and the
// peer might lose the answer.
func answerRefused(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(refusalLinger))
	if _, err := io.WriteString(c, refusal); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}

// wait returns once every refused connection is closed.
func (l *limitListener) wait() { l.refusals.Wait() }

// limitConn gives its slot back when closed. It passes on what the server
// and the SSE writer look for on a TCP connection.
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// SyscallConn lets the SSE writer write to the socket without blocking.
func (c *limitConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// CloseWrite lets net/http half-close before closing (see closeWriteAndWait).
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

var (
	_ syscall.Conn                    = (*limitConn)(nil)
	_ interface{ CloseWrite() error } = (*limitConn)(nil)
)
