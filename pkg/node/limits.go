package node

import (
	"log/slog"

	"github.com/pushcluster/pushcluster/internal/fdlimit"
)

// raiseFileLimit lifts the open-file limit to the hard limit and logs it.
func raiseFileLimit(log *slog.Logger) {
	from, to, err := fdlimit.Raise()
	if err != nil {
		log.Warn("cannot raise the open-file limit", "limit", from, "err", err)
		return
	}
	log.Info("open-file limit at the hard limit", "limit", to, "was", from)
}
