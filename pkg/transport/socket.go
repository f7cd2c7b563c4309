package transport

import (
	"net"
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
	written := 0
	var err error
	if rerr := s.raw.Write(func(fd uintptr) bool {
		for len(qs) > 0 {
			n, all, werr := writev(int(fd), qs)
			switch werr {
			case nil:
				written += n
				qs = advance(qs, n)
				switch {
				case len(qs) == 0:
				case wait && s.stop != nil && s.stop.Load():
					err = errClosed
					return true
				case wait:
					s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
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
		return written, rerr
	}
	return written, err
}
