package deploy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pushcluster/pushcluster/pkg/node"
)

// repoRoot is the repository's top directory, where the deployment files live.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func readFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	nodeOnce sync.Once
	nodeBase string
	nodeErr  error
)

// servedStatus GETs path from a real node (the embedded store, on a
// loopback port, shared by the package's tests) and returns the status,
// waiting out a 503 while the node's delivery path comes up.
func servedStatus(t *testing.T, path string) int {
	t.Helper()
	nodeOnce.Do(startNode)
	if nodeErr != nil {
		t.Fatal(nodeErr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(nodeBase + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return resp.StatusCode
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopNode stops the shared node; TestMain calls it after the tests.
var stopNode func()

func startNode() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		nodeErr = err
		return
	}
	n, err := node.New(node.Config{Listener: ln, Name: "deploy-test", ShutdownTimeout: 5 * time.Second})
	if err != nil {
		ln.Close()
		nodeErr = fmt.Errorf("failed to start a node: %w", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	nodeBase = "http://" + n.Addr().String()
	stopNode = func() {
		cancel()
		<-done
	}
}
