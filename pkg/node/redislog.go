package node

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// SetRedisLogger sends the go-redis client's own log lines (failed dials,
// dropped pub/sub connections, truncated durations) to log, at Warn, instead
// of the standard library's logger on stderr. go-redis has one logger per
// process, so this is for the program to call once at start, as cmd/node
// does; a Node never sets it, and the last call wins.
func SetRedisLogger(log *slog.Logger) {
	redis.SetLogger(redisLogger{log})
}

// redisLogger adapts slog to go-redis's logging interface.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	line := strings.TrimPrefix(strings.TrimSpace(fmt.Sprintf(format, v...)), "redis: ")
	l.log.WarnContext(ctx, "redis client", "detail", line)
}
