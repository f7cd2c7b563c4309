//go:build unix

package tests

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/pushcluster/pushcluster/internal/leakcheck"
	"github.com/pushcluster/pushcluster/internal/testredis"
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{}) // a test that stops Redis makes go-redis complain
	before := goleak.IgnoreCurrent()
	code := testredis.Main(m)
	if code == 0 {
		if err := leakcheck.Find(before); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}
