package transport

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// socket writes queued frames to a hijacked connection: straight to its
// non-blocking descriptor with writev, without blocking (try: from the
// goroutine that delivers, or the poller's loop once it has backed up) or
// until all is written (write: a writer goroutine, where there is no
// poller). Event streams and WebSockets share it.
type socket struct {
	conn    net.Conn
	raw     syscall.RawConn // nil when there is no descriptor (TLS): conn.Write
	timeout time.Duration
	// stop, when set and true, ends a blocking write at its next progress.
	stop *atomic.Bool
}

func newSocket(conn net.Conn, timeout time.Duration) socket {
	s := socket{conn: conn, timeout: timeout}
	if sc, ok := conn.(syscall.Conn); ok {
		s.raw, _ = sc.SyscallConn()
	}
	return s
}

// write writes all of qs, advancing them, or fails. The deadline bounds
// each wait for the socket to take more, not the whole write, which for a
// burst may be megabytes; it is cleared after, as a deadline left behind
// would fail the direct writes that follow.
func (s *socket) write(qs []queued) (int, error) {
	s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
	defer s.conn.SetWriteDeadline(time.Time{})
	if s.raw == nil {
		return writeEach(qs, s.conn)
	}
	return s.send(qs, true)
}

// try writes what the socket takes of q now, without blocking, and
// advances q past it.
func (s *socket) try(q *queued) (int, error) {
	if s.raw == nil {
		return 0, nil
	}
	return s.send(unsafe.Slice(q, 1), false)
}

// send makes write system calls on the non-blocking descriptor, advancing
// qs: until all of qs is written when wait is set, waiting for the socket
// to take more under the write deadline, which each write that takes some
// moves on; else until one is short. It returns the bytes written.
func (s *socket) send(qs []queued, wait bool) (int, error) {
	op := sendOps.Get().(*sendOp)
	op.s, op.qs, op.wait = s, qs, wait
	rerr := s.raw.Write(op.fn)
	written, err := op.written, op.err
	*op = sendOp{fn: op.fn}
	sendOps.Put(op)
	if rerr != nil {
		return written, rerr
	}
	return written, err
}

// sendOp is one send's arguments and results. The func a RawConn is given
// escapes, so a closure per send would be an allocation per write; these
// are pooled, each with its func bound once.
type sendOp struct {
	s       *socket
	qs      []queued
	wait    bool
	written int
	err     error
	fn      func(fd uintptr) bool // op.write
}

var sendOps = sync.Pool{New: func() any {
	op := &sendOp{}
	op.fn = op.write
	return op
}}

func (op *sendOp) write(fd uintptr) bool {
	s := op.s
	for len(op.qs) > 0 {
		n, all, werr := writev(int(fd), op.qs)
		switch werr {
		case nil:
			op.written += n
			op.qs = advance(op.qs, n)
			switch {
			case len(op.qs) == 0:
			case op.wait && s.stop != nil && s.stop.Load():
				op.err = errClosed
				return true
			case op.wait:
				s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
			case !all:
				return true // the socket is full
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			return !op.wait // wait: until the socket takes more, or the deadline
		default:
			op.err = werr
			return true
		}
	}
	return true
}
