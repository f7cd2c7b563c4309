// Package testredis gives tests a real redis-server: the one at REDIS_URL
// when set, else one started from PATH on a free loopback port. Each test
// gets its own key prefix, so tests share a server and run in parallel.
package testredis

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/redisproc"
)

// Server is a redis-server process a test owns.
type Server struct {
	*redisproc.Server
}

// Persistent keeps a server's data across restarts.
var Persistent = redisproc.Persistent

var (
	sharedOnce sync.Once
	shared     *redisproc.Server
	sharedURL  string
	sharedErr  error
	seq        atomic.Int64
)

// Main runs the tests and stops the shared server afterwards; call it from
// TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the shared server, if one was started: for a TestMain that
// runs more than the tests on it.
func Stop() {
	if shared != nil {
		shared.Close()
	}
}

// URL returns the URL of the shared server, starting it on first use.
func URL(t testing.TB) string {
	t.Helper()
	sharedOnce.Do(func() {
		if u := os.Getenv("REDIS_URL"); u != "" {
			sharedURL = u
			return
		}
		shared, sharedErr = redisproc.Start()
		if sharedErr == nil {
			sharedURL = shared.URL()
		}
	})
	if sharedErr != nil {
		t.Fatalf("testredis: %v (or set REDIS_URL)", sharedErr)
	}
	return sharedURL
}

// Client returns a client of the shared server, closed when the test ends.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	return clientFor(t, URL(t))
}

func clientFor(t testing.TB, url string) *redis.Client {
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// Prefix returns a key prefix unique to this test run and test.
func Prefix(t testing.TB) string {
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	return fmt.Sprintf("t%d.%d.%s:", os.Getpid(), seq.Add(1), name)
}

// Own starts a redis-server for this test alone (to stop, restart or cut
// off), stopped when the test ends.
func Own(t testing.TB, opts ...redisproc.Option) *Server {
	t.Helper()
	s, err := redisproc.Start(opts...)
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	t.Cleanup(s.Close)
	return &Server{s}
}

// Client returns a client of s, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client { return clientFor(t, s.URL()) }
