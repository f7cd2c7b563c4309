package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/pushcluster/pushcluster/internal/ratelog"
)

// problemLogEvery bounds how often memberlist's errors and warnings are
// logged.
const problemLogEvery = 10 * time.Second

// gossipLog routes memberlist's "[LEVEL] memberlist: …" lines to slog.
// Its errors and warnings come one per packet, most of them from outside
// the cluster (junk sent to the port, a peer with another key or label, a
// peer that went away mid-stream), so anyone who reaches the port could
// fill the disk: they are counted, and logged at WARN at most once per
// problemLogEvery with how many there were. A closed connection reported
// while the member shuts down is no problem at all.
type gossipLog struct {
	l        *slog.Logger
	shutting *atomic.Bool
	problems atomic.Uint64
	limit    *ratelog.Limiter
}

func newGossipLog(l *slog.Logger, shutting *atomic.Bool) *gossipLog {
	return &gossipLog{l: l, shutting: shutting, limit: ratelog.New(problemLogEvery)}
}

// logger is the log.Logger memberlist writes to.
func (g *gossipLog) logger() *log.Logger { return log.New(g, "", 0) }

func (g *gossipLog) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelDebug
	for _, lv := range []struct {
		prefix string
		level  slog.Level
	}{{"[ERR]", slog.LevelError}, {"[WARN]", slog.LevelWarn}, {"[INFO]", slog.LevelDebug}, {"[DEBUG]", slog.LevelDebug}} {
		if rest, ok := bytes.CutPrefix(line, []byte(lv.prefix)); ok {
			level, line = lv.level, bytes.TrimSpace(rest)
			break
		}
	}
	switch {
	case level < slog.LevelWarn:
		g.l.Debug("gossip", "msg", string(line))
	case g.shutting.Load() && bytes.Contains(line, []byte("use of closed network connection")):
		g.l.Debug("gossip", "msg", string(line))
	default:
		g.problems.Add(1)
		if n, ok := g.limit.Allow(); ok {
			g.l.Log(context.Background(), slog.LevelWarn, "gossip problems: packets refused or connections failed (counted in pushcluster_gossip_problems_total)",
				"count", n, "last", string(line))
		}
	}
	return len(p), nil
}
