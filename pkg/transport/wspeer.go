package transport

import (
	"bufio"
	"net"
	"net/http"
	"syscall"

	"golang.org/x/sys/unix"
)

// hijackRecorder hands the WebSocket library the connection, keeping a
// handle on its socket for the liveness check (peerWindowMoved).
type hijackRecorder struct {
	http.ResponseWriter
	raw syscall.RawConn
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if sc, ok := conn.(syscall.Conn); ok && err == nil {
		h.raw, _ = sc.SyscallConn()
	}
	return conn, brw, err
}

func (h *hijackRecorder) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// peerWindowMoved reports whether the receive window the peer advertises
// changed since the last heartbeat. A peer working through a burst that sits
// in its own receive buffer sends nothing, and answers a ping only once it
// reaches it, but every window update it sends as it reads shows it alive.
// Called from the heartbeat goroutine only.
func (c *wsConn) peerWindowMoved() bool {
	if c.raw == nil {
		return false
	}
	var info *unix.TCPInfo
	var err error
	if cerr := c.raw.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); cerr != nil || err != nil {
		return false
	}
	moved := info.Snd_wnd != c.window
	c.window = info.Snd_wnd
	return moved
}
