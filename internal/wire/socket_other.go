//go:build !unix

package wire

import "unsafe"

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
