package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisStats is a snapshot of Redis's own accounting: calls per command
// (INFO commandstats) and CPU (INFO cpu).
type redisStats struct {
	at    time.Time
	cpu   time.Duration // used_cpu_sys + used_cpu_user
	calls map[string]int64
}

func readRedisStats(ctx context.Context, rdb *redis.Client) (redisStats, error) {
	text, err := rdb.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		return redisStats{}, fmt.Errorf("bench: failed to read INFO: %w", err)
	}
	s, err := parseRedisStats(text)
	s.at = time.Now()
	return s, err
}

// parseRedisStats reads "used_cpu_sys:1.5" and
// "cmdstat_xrange:calls=3,usec=10,…" lines of INFO.
func parseRedisStats(text string) (redisStats, error) {
	s := redisStats{calls: map[string]int64{}}
	seen := 0
	for line := range strings.Lines(text) {
		key, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		switch {
		case !ok:
		case key == "used_cpu_sys" || key == "used_cpu_user":
			f, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return s, fmt.Errorf("bench: bad INFO %s %q", key, val)
			}
			s.cpu += time.Duration(f * float64(time.Second))
			seen++
		case strings.HasPrefix(key, "cmdstat_"):
			calls, _, _ := strings.Cut(strings.TrimPrefix(val, "calls="), ",")
			n, err := strconv.ParseInt(calls, 10, 64)
			if err != nil {
				return s, fmt.Errorf("bench: bad INFO %s %q", key, val)
			}
			s.calls[strings.TrimPrefix(key, "cmdstat_")] = n
		}
	}
	if seen != 2 {
		return s, errors.New("bench: INFO cpu lacks used_cpu_sys or used_cpu_user")
	}
	return s, nil
}

// since returns the calls of cmd between earlier and s.
func (s redisStats) since(earlier redisStats, cmd string) int64 {
	return s.calls[cmd] - earlier.calls[cmd]
}
