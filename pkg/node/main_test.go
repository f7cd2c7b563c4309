package node

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/pushcluster/pushcluster/internal/testredis"
)

func TestMain(m *testing.M) {
	before := goleak.IgnoreCurrent()
	code := testredis.Main(m)
	if code == 0 {
		if err := goleak.Find(before); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}
