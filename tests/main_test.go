//go:build unix

package tests

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/pushcluster/pushcluster/internal/testredis"
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{}) // a test that stops Redis makes go-redis complain
	before := goleak.IgnoreCurrent()
	code := testredis.Main(m)
	if code == 0 {
		// go-redis keeps retrying a failed dial for up to a second after
		// its pool closes: tests that stop Redis leave one behind briefly.
		redisRedial := goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial")
		// memberlist's probe of a member waits for its ack or its timeout
		// even after Shutdown: on a loaded machine that outlives goleak's
		// default ~2 s of retries. Waiting longer still catches real leaks.
		err := goleak.Find(before, redisRedial)
		for try := 0; err != nil && try < 5; try++ {
			time.Sleep(time.Second)
			err = goleak.Find(before, redisRedial)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}
