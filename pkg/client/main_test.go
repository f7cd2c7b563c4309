package client_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushcluster/pushcluster/internal/leakcheck"
	"github.com/pushcluster/pushcluster/internal/testredis"
	"github.com/pushcluster/pushcluster/pkg/node"
	"github.com/pushcluster/pushcluster/pkg/transport"
)

// exampleURL is a node the examples talk to, on a real Redis.
var exampleURL string

func TestMain(m *testing.M) {
	before := goleak.IgnoreCurrent()
	ex := startNodeFor(mainTB{}, testredis.URL(mainTB{}), "example:", "example")
	exampleURL = ex.url
	code := m.Run()
	ex.stop()
	testredis.Stop()
	if code == 0 {
		if err := leakcheck.Find(before); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// mainTB is what the helpers need of a testing.TB outside a test.
type mainTB struct{ testing.TB }

func (mainTB) Helper()                   {}
func (mainTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// testNode is a node on loopback.
type testNode struct {
	url  string
	stop func()
}

func startNode(t *testing.T, name string, mod ...func(*node.Config)) *testNode {
	t.Helper()
	n := startNodeFor(t, testredis.URL(t), testredis.Prefix(t), name, mod...)
	t.Cleanup(n.stop)
	return n
}

func startNodeFor(t testing.TB, redisURL, prefix, name string, mod ...func(*node.Config)) *testNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%v", err)
	}
	cfg := node.Config{RedisURL: redisURL, Prefix: prefix, Name: name, Listener: ln,
		ProbeInterval: 200 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Transport: transport.Config{DrainTimeout: 200 * time.Millisecond}}
	for _, m := range mod {
		m(&cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	var once sync.Once
	return &testNode{url: "http://" + ln.Addr().String(), stop: func() { once.Do(func() { cancel(); <-done }) }}
}
