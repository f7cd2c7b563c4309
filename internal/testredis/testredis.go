// Package testredis gives tests a real redis-server: the one at REDIS_URL
// when set, else one started from PATH on a free loopback port. Each test
// gets its own key prefix, so tests share a server and run in parallel.
package testredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process the tests own.
type Server struct {
	Addr string
	dir  string
	cmd  *exec.Cmd
	// persist makes the server keep its data across Restart (append-only
	// file, fsync on every write), as a production Redis would.
	persist bool
}

// Option configures a server started by Own.
type Option func(*Server)

// Persistent keeps data across restarts.
func Persistent(s *Server) { s.persist = true }

var (
	sharedOnce sync.Once
	shared     *Server
	sharedURL  string
	sharedErr  error
	seq        atomic.Int64
)

// Main runs the tests and stops the shared server afterwards; call it from
// TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// URL returns the URL of the shared server, starting it on first use.
func URL(t testing.TB) string {
	t.Helper()
	sharedOnce.Do(func() {
		if u := os.Getenv("REDIS_URL"); u != "" {
			sharedURL = u
			return
		}
		shared, sharedErr = Start()
		if sharedErr == nil {
			sharedURL = "redis://" + shared.Addr + "/0"
		}
	})
	if sharedErr != nil {
		t.Fatalf("testredis: %v", sharedErr)
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
func Own(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Start(opts...)
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// URL returns the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Client returns a client of s, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client { return clientFor(t, s.URL()) }

// Start starts a redis-server from PATH on a free loopback port.
func Start(opts ...Option) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redis-server is not on PATH and REDIS_URL is not set: %w", err)
	}
	dir, err := os.MkdirTemp("", "testredis")
	if err != nil {
		return nil, err
	}
	var last error
	for range 5 {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: addr, dir: dir}
		for _, o := range opts {
			o(s)
		}
		if last = s.Restart(); last == nil {
			return s, nil
		}
	}
	return nil, last
}

// Restart starts the server again on the same port: with its data when
// Persistent, else empty, as after a crash of a Redis without persistence.
// Runtime settings (CONFIG SET) are lost either way. It must be stopped first.
func (s *Server) Restart() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	aof := "no"
	if s.persist {
		aof = "yes"
	}
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", aof, "--appendfsync", "always", "--dir", s.dir)
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	for ctx.Err() == nil {
		if c.Ping(ctx).Err() == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("redis-server on %s did not start", s.Addr)
}

// Stop kills the server. It is safe to call more than once.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
