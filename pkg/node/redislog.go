package node

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/ratelog"
)

// redisLogEvery bounds how often go-redis's own lines are logged: while
// Redis is away it reports every failed dial, several a second.
const redisLogEvery = 10 * time.Second

// SetRedisLogger sends the go-redis client's own log lines (failed dials,
// dropped pub/sub connections, truncated durations) to log, at Warn and at
// most once per redisLogEvery with how many there were, instead of the
// standard library's logger on stderr. go-redis has one logger per
// process, so this is for the program to call once at start, as cmd/node
// does; a Node never sets it, and the last call wins.
func SetRedisLogger(log *slog.Logger) {
	redis.SetLogger(redisLogger{log, ratelog.New(redisLogEvery)})
}

// redisLogger adapts slog to go-redis's logging interface.
type redisLogger struct {
	log   *slog.Logger
	limit *ratelog.Limiter
}

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	n, ok := l.limit.Allow()
	if !ok {
		return
	}
	line := strings.TrimPrefix(strings.TrimSpace(fmt.Sprintf(format, v...)), "redis: ")
	l.log.WarnContext(ctx, "redis client", "detail", line, "count", n)
}
