//go:build !linux

package wire

// watchLoop is a watcher's loop; there are none here.
type watchLoop struct{}

func newWatchLoop() (*watchLoop, error) { return nil, errNoEpoll }

func (*watchLoop) add(*Watch) bool   { return false }
func (*watchLoop) rearm(*Watch) bool { return false }
func (*watchLoop) forget(uint64)     {}
func (*watchLoop) stop()             {}
