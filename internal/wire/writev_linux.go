package wire

import (
	"sync"
	"syscall"
	"unsafe"
)

// maxIovecs bounds one writev: enough parts to fill a socket buffer with
// small frames, for a 1 KiB array per write in flight.
const maxIovecs = 64

// iovecs are reused: a burst written to thousands of sockets would
// otherwise leave an array of garbage per write system call.
var iovecs = sync.Pool{New: func() any { return new([maxIovecs]syscall.Iovec) }}

// writev makes one write system call on the non-blocking descriptor fd
// with what remains of qs, in order: a plain write for one part, a writev
// of up to maxIovecs parts otherwise. It reports how many bytes the socket
// took and whether that was all it was offered. The parts are only read.
//
// Hand-written because net.Buffers consumes its slices, which here are
// shared with other connections, and poll.FD keeps an iovec array per
// connection once it has written a vector.
func writev(fd int, qs []Queued) (n int, all bool, err error) {
	var first []byte
	parts := 0
	for i := range qs {
		qs[i].each(func(b []byte) bool {
			if parts == 0 {
				first = b
			}
			parts++
			return parts < 2
		})
		if parts > 1 {
			break
		}
	}
	switch parts {
	case 0:
		return 0, true, nil
	case 1:
		n, err = syscall.Write(fd, first)
		return max(n, 0), n == len(first), err
	}
	iov := iovecs.Get().(*[maxIovecs]syscall.Iovec)
	parts, offered := 0, 0
	for i := range qs {
		qs[i].each(func(b []byte) bool {
			iov[parts].Base = &b[0]
			iov[parts].SetLen(len(b))
			offered += len(b)
			parts++
			return parts < maxIovecs
		})
		if parts == maxIovecs {
			break
		}
	}
	r, _, errno := syscall.Syscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(parts))
	clear(iov[:parts]) // hold no frames
	iovecs.Put(iov)
	if errno != 0 {
		return 0, false, errno
	}
	return int(r), int(r) == offered, nil
}
