package wire

import (
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// socket writes queued frames to a hijacked connection: straight to its
// non-blocking descriptor with writev where the platform allows, without
// blocking (try: from the goroutine that delivers, or the poller's loop
// once it has backed up) or until all is written (write: a writer
// goroutine, where there is no poller). Event streams and WebSockets share
// it.
type socket struct {
	conn    net.Conn
	raw     syscall.RawConn // nil when there is no descriptor to write (TLS, not Unix): conn.Write
	timeout time.Duration
	// stop, when set and true, ends a blocking write at its next progress.
	stop *atomic.Bool
}

func newSocket(conn net.Conn, timeout time.Duration) socket {
	s := socket{conn: conn, timeout: timeout}
	if sc, ok := conn.(syscall.Conn); ok && directWrites {
		s.raw, _ = sc.SyscallConn()
	}
	return s
}

// write writes all of qs, advancing them, or fails. The deadline bounds
// each wait for the socket to take more, not the whole write, which for a
// burst may be megabytes; it is cleared after, as a deadline left behind
// would fail the direct writes that follow.
func (s *socket) write(qs []Queued) (int, error) {
	s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
	defer s.conn.SetWriteDeadline(time.Time{})
	if s.raw == nil {
		return writeEach(qs, s.conn)
	}
	return s.send(qs, true)
}

// try writes what the socket takes of q now, without blocking, and
// advances q past it.
func (s *socket) try(q *Queued) (int, error) {
	if s.raw == nil {
		return 0, nil
	}
	return s.send(oneOf(q), false)
}

// writeEach writes the parts of qs to w one by one, advancing them, and
// returns the bytes written.
func writeEach(qs []Queued, w io.Writer) (int, error) {
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
