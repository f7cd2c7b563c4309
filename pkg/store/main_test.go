package store

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/pushcluster/pushcluster/internal/testredis"
	"github.com/pushcluster/pushcluster/internal/waitfor"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{}) // tests that cut connections make go-redis complain
	before := goleak.IgnoreCurrent()
	code := testredis.Main(m)
	if sharedRC != nil {
		sharedRC.Close()
	}
	if code == 0 {
		// go-redis keeps retrying a failed dial for up to a second after
		// its pool closes: tests that stop Redis leave one behind briefly.
		redisRedial := goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial")
		if err := goleak.Find(before, redisRedial); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// newTestStore returns a store on the shared test Redis under a prefix of
// the test's own.
func newTestStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	if cfg.Client == nil {
		cfg.Client = testredis.Client(t)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = testredis.Prefix(t)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// xadd appends an entry with an explicit ID (or "*") to channel.
func xadd(t *testing.T, s *Store, channel, id, data string) protocol.ID {
	t.Helper()
	raw, err := s.rdb.XAdd(t.Context(), &redis.XAddArgs{Stream: s.Key(channel), ID: id, Values: []any{FieldData, data}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.ParseID(raw)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func mustID(t testing.TB, s string) protocol.ID {
	t.Helper()
	id, err := protocol.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func checkFor(t testing.TB, total time.Duration, fn func() error) {
	t.Helper()
	waitfor.Check(t, total, fn)
}
