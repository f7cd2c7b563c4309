package transport

import (
	"golang.org/x/sys/unix"
)

// peerWindowMoved reports whether the receive window the peer advertises
// changed since the last heartbeat. A peer working through a burst that sits
// in its own receive buffer sends nothing, and answers a ping only once it
// reaches it, but every window update it sends as it reads shows it alive.
// Called from the heartbeat goroutine only.
func (c *wsConn) peerWindowMoved() bool {
	if c.wire.raw == nil {
		return false
	}
	var info *unix.TCPInfo
	var err error
	if cerr := c.wire.raw.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); cerr != nil || err != nil {
		return false
	}
	moved := info.Snd_wnd != c.window
	c.window = info.Snd_wnd
	return moved
}
