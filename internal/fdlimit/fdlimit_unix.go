//go:build unix

package fdlimit

import (
	"fmt"
	"syscall"
)

// Raise sets the soft RLIMIT_NOFILE to the hard limit and returns the limit
// before and after. The Go runtime already does this at start on Linux;
// calling Raise makes it explicit and reportable.
func Raise() (from, to uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("fdlimit: failed to read RLIMIT_NOFILE: %w", err)
	}
	from = lim.Cur
	if lim.Cur >= lim.Max {
		return from, lim.Cur, nil
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return from, from, fmt.Errorf("fdlimit: failed to raise RLIMIT_NOFILE to %d: %w", lim.Max, err)
	}
	return from, lim.Max, nil
}

// Current returns the soft RLIMIT_NOFILE: how many descriptors the process
// may hold.
func Current() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("fdlimit: failed to read RLIMIT_NOFILE: %w", err)
	}
	return lim.Cur, nil
}
