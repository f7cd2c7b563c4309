// Package redisproc runs a redis-server from PATH on a free loopback port,
// for the tests and the benchmark tools, and stops or restarts it at will.
package redisproc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/waitfor"
)

// Server is a redis-server process its starter owns.
type Server struct {
	Addr string
	dir  string
	cmd  *exec.Cmd
	// persist keeps data across Restart (append-only file, fsync on every
	// write), as a production Redis would.
	persist bool
}

// Option configures a server started by Start.
type Option func(*Server)

// Persistent keeps data across restarts.
func Persistent(s *Server) { s.persist = true }

// Start starts a redis-server from PATH on a free loopback port.
func Start(opts ...Option) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redisproc: redis-server is not on PATH: %w", err)
	}
	dir, err := os.MkdirTemp("", "redisproc")
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
	os.RemoveAll(dir)
	return nil, last
}

// URL returns the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

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
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	ctx := context.Background()
	err := waitfor.Until(ctx, 10*time.Second, 20*time.Millisecond, func() bool { return c.Ping(ctx).Err() == nil })
	if err != nil {
		s.Stop()
		return fmt.Errorf("redisproc: redis-server on %s did not answer: %w", s.Addr, err)
	}
	return nil
}

// Stop kills the server. It is safe to call more than once.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.Resume() // a paused server dies too
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Close stops the server and removes its files.
func (s *Server) Close() {
	s.Stop()
	os.RemoveAll(s.dir)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
