//go:build !unix

package wire

import (
	"syscall"
	"unsafe"
)

// directWrites: without Unix descriptors, every write goes through the
// net.Conn, and a connection that backs up gets a writer goroutine.
const directWrites = false

func oneOf(q *Queued) []Queued { return unsafe.Slice(q, 1) }

func (s *socket) send(qs []Queued, wait bool) (int, error) {
	if !wait {
		return 0, nil
	}
	return writeEach(qs, s.conn)
}

// readNow is never called here: without epoll nothing is watched.
func readNow(uintptr, []byte) (int, error) { return 0, errNoEpoll }

func pending(syscall.RawConn) bool { return true }
