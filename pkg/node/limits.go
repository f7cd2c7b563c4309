package node

import (
	"log/slog"
	"syscall"
)

// raiseFileLimit lifts the soft open-file limit to the hard limit: every
// connection is a file descriptor, and soft limits default to 1,024.
func raiseFileLimit(log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("cannot read the open-file limit", "err", err)
		return
	}
	if lim.Cur >= lim.Max {
		log.Info("open-file limit", "limit", lim.Cur)
		return
	}
	old := lim.Cur
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("cannot raise the open-file limit", "limit", old, "hard", lim.Max, "err", err)
		return
	}
	log.Info("raised the open-file limit", "from", old, "to", lim.Max)
}
