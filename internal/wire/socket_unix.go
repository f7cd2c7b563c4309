//go:build unix

package wire

import (
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// directWrites: the descriptor of a hijacked connection is written with
// system calls of the node's own, without blocking.
const directWrites = true

// oneOf is q as a slice of one, without copying it.
func oneOf(q *Queued) []Queued { return unsafe.Slice(q, 1) }

// send makes write system calls on the non-blocking descriptor, advancing
// qs: until all of qs is written when wait is set, waiting for the socket
// to take more under the write deadline, which each write that takes some
// moves on; else until one is short. It returns the bytes written.
func (s *socket) send(qs []Queued, wait bool) (int, error) {
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
	qs      []Queued
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
			op.qs = advanceAll(op.qs, n)
			switch {
			case len(op.qs) == 0:
			case op.wait && s.stop != nil && s.stop.Load():
				op.err = ErrClosed
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

// readNow reads what fd holds without blocking: EAGAIN when nothing.
func readNow(fd uintptr, b []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), b)
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// pending reports whether raw's socket holds something to read, or an
// end or error for a read to find; false only when a read would wait.
func pending(raw syscall.RawConn) bool {
	var buf [1]byte
	n, errno := 0, syscall.Errno(0)
	err := raw.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), 1,
				syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			if e != syscall.EINTR {
				n, errno = int(r), e
				return true
			}
		}
	})
	return err != nil || errno != syscall.EAGAIN || n > 0
}
