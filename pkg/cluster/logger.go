package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// newMemberlistLogger routes memberlist's "[LEVEL] memberlist: …" lines
// to slog at their level.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(levelWriter{l}, "", 0)
}

type levelWriter struct{ l *slog.Logger }

func (w levelWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelDebug
	for prefix, lv := range map[string]slog.Level{"[ERR]": slog.LevelError, "[WARN]": slog.LevelWarn, "[INFO]": slog.LevelDebug} {
		if bytes.HasPrefix(line, []byte(prefix)) {
			level = lv
			line = bytes.TrimSpace(line[len(prefix):])
		}
	}
	w.l.Log(context.Background(), level, "gossip", "msg", string(line))
	return len(p), nil
}
