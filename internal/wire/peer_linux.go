package wire

import (
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PeerWindow returns the receive window the peer of raw's TCP socket last
// advertised (TCP_INFO's snd_wnd). A peer working through a burst that
// sits in its own receive buffer sends nothing, and answers a ping only
// once it reaches it, but every window update it sends as it reads shows
// it alive. ok is false where the kernel cannot tell.
func PeerWindow(raw syscall.RawConn) (wnd uint32, ok bool) {
	if raw == nil {
		return 0, false
	}
	op := tcpInfoOps.Get().(*tcpInfoOp)
	err := raw.Control(op.fn)
	wnd, failed := op.info.Snd_wnd, op.err != 0
	op.err = 0
	tcpInfoOps.Put(op)
	return wnd, err == nil && !failed
}

// tcpInfoOp reads a socket's TCP_INFO. unix.GetsockoptTCPInfo returns a
// new struct per call, and every WebSocket asks once per heartbeat; these
// are pooled, as sendOp is, and the system call fills the pooled struct.
type tcpInfoOp struct {
	info unix.TCPInfo
	err  syscall.Errno
	fn   func(fd uintptr) // op.get
}

var tcpInfoOps = sync.Pool{New: func() any {
	op := &tcpInfoOp{}
	op.fn = op.get
	return op
}}

func (op *tcpInfoOp) get(fd uintptr) {
	size := uint32(unix.SizeofTCPInfo)
	_, _, op.err = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&op.info)), uintptr(unsafe.Pointer(&size)), 0)
}
