//go:build unix

package tests

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runNode runs the node's binary to its end with args and returns its exit
// code and what it wrote.
func runNode(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildNode(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String()
	}
	t.Fatalf("node %v: %v\n%s", args, err, out.String())
	return 0, ""
}

// Every failure to start — a taken port, a value no flag accepts, a
// gossip port that is not free, authentication without a gossip key —
// prints what is wrong and exits 1: never a panic, never a node that runs
// on a value it did not understand.
func TestStartupErrorsExitWithTheirMessage(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	gossipTaken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer gossipTaken.Close()
	c := newCluster(t)
	redisURL := c.redisURL
	free := func() string { return net.JoinHostPort(nextHost(), "0") }
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"listen port taken", []string{"-listen", taken.Addr().String()},
			[]string{"failed to listen", "address already in use"}},
		{"negative drain timeout", []string{"-listen", free(), "-drain-timeout", "-1s"},
			[]string{"-drain-timeout -1s: must be positive"}},
		{"numbers that mean nothing", []string{"-listen", free(), "-max-channels", "0", "-rebalance-rate", "2", "-channel-ttl", "0", "-rebalance-factor", "0.5"},
			[]string{"-max-channels 0: must be positive", "-rebalance-rate 2: ", "-channel-ttl 0s: ", "-rebalance-factor 0.5: must be 1 or more"}},
		{"negative rebalance factor", []string{"-listen", free(), "-rebalance-factor", "-3"},
			[]string{"-rebalance-factor -3: must not be negative"}},
		{"zero that would mean a default", []string{"-listen", free(), "-max-len", "0"},
			[]string{"-max-len 0: "}},
		{"gossip port taken", []string{"-listen", free(), "-redis-url", redisURL, "-cluster-bind", gossipTaken.Addr().String()},
			[]string{"failed to start gossip", "address already in use"}},
		{"authentication without a gossip key", []string{"-listen", free(), "-redis-url", redisURL, "-cluster-bind", free(),
			"-api-key", "test-api-key-0123456789"},
			[]string{"gossip is not encrypted", "-cluster-key", "-cluster-insecure"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runNode(t, tc.args...)
			if code != 1 {
				t.Errorf("exit code %d, want 1:\n%s", code, out)
			}
			if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
				t.Errorf("it panicked:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
		})
	}
}
