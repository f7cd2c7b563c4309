//go:build unix && !linux

package wire

import "syscall"

// writev makes one write system call on the non-blocking descriptor fd
// with the first part left of qs: a plain write (Linux gathers up to 64
// parts in one writev). It reports how many bytes the socket took and
// whether that was all it was offered.
func writev(fd int, qs []Queued) (n int, all bool, err error) {
	var first []byte
	for i := range qs {
		qs[i].each(func(b []byte) bool {
			first = b
			return false
		})
		if first != nil {
			break
		}
	}
	if first == nil {
		return 0, true, nil
	}
	n, err = syscall.Write(fd, first)
	return max(n, 0), n == len(first), err
}
