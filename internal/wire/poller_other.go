//go:build !linux

package wire

import (
	"errors"
	"syscall"
	"time"
)

// errNoEpoll: the platform has no epoll; each backed-up connection gets a
// writer goroutine instead.
var errNoEpoll = errors.New("wire: no epoll on this platform")

// pollLoop is a poller's loop; there are none here.
type pollLoop struct{}

func newPollLoop(time.Duration) (*pollLoop, error) { return nil, errNoEpoll }

func (*pollLoop) arm(*Outbox, syscall.RawConn, time.Time) bool { return false }
func (*pollLoop) forget(uint64)                                {}
func (*pollLoop) stop()                                        {}
