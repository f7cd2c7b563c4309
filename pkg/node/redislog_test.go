package node

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pushcluster/pushcluster/internal/testredis"
)

// go-redis's own log lines reach the node's slog logger, not stderr. A
// duration under a millisecond makes it log as it builds the command.
func TestRedisClientLogsThroughSlog(t *testing.T) {
	var buf bytes.Buffer
	SetRedisLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	rdb := testredis.Client(t)
	rdb.PExpire(t.Context(), testredis.Prefix(t)+"k", 500*time.Microsecond)
	var rec struct{ Level, Msg, Detail string }
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if rec.Level != "WARN" || rec.Msg != "redis client" || !strings.Contains(rec.Detail, "truncating to 1ms") {
		t.Errorf("logged %+v", rec)
	}
}

// A Redis that is away makes go-redis log every failed dial; the node logs
// them at most once per interval, with their count.
func TestRedisClientLogsAreBounded(t *testing.T) {
	var buf bytes.Buffer
	SetRedisLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { SetRedisLogger(slog.New(slog.DiscardHandler)) })
	rdb := testredis.Client(t)
	for range 50 {
		rdb.PExpire(t.Context(), testredis.Prefix(t)+"k", 500*time.Microsecond)
	}
	if lines := bytes.Count(buf.Bytes(), []byte("\n")); lines != 1 {
		t.Errorf("50 lines from go-redis logged as %d:\n%s", lines, buf.String())
	}
}
