// Package rediscluster runs real Redis deployments on loopback for tests:
// a Redis Cluster of three primaries with a replica each, and a Sentinel
// group of one primary, one replica and three Sentinels, from the
// redis-server, redis-sentinel and redis-cli on PATH. It kills primaries,
// moves slots and fails over at the test's word, and waits until the
// deployment has settled again.
package rediscluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/waitfor"
)

// ErrMissing is returned when a program the deployment needs is not on PATH.
var ErrMissing = errors.New("rediscluster: program not on PATH")

// Available reports whether redis-server, redis-sentinel and redis-cli are
// on PATH (Debian's redis-server, redis-sentinel and redis-tools).
func Available() error {
	var errs []error
	for _, p := range []string{"redis-server", "redis-sentinel", "redis-cli"} {
		if _, err := exec.LookPath(p); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s", ErrMissing, p))
		}
	}
	return errors.Join(errs...)
}

// Server is one redis-server or redis-sentinel process.
type Server struct {
	Addr string
	args []string // after the config file
	prog string
	conf string // its config file: Sentinel rewrites it
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

func newServer(prog, dir string, conf string, args ...string) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	dir = filepath.Join(dir, port)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &Server{Addr: addr, prog: prog, dir: dir, conf: filepath.Join(dir, "redis.conf")}
	conf = fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\n", port, dir) + conf
	if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	s.args = args
	return s, nil
}

// Port returns the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Start starts the process and waits until it answers PING.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	cmd := exec.Command(s.prog, append([]string{s.conf}, s.args...)...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return err
	}
	s.cmd = cmd
	s.mu.Unlock()
	c := s.Client()
	defer c.Close()
	err := waitfor.Until(ctx, 10*time.Second, 10*time.Millisecond, func() bool { return c.Ping(ctx).Err() == nil })
	if err != nil {
		s.Kill()
		return fmt.Errorf("rediscluster: %s on %s did not answer: %w", s.prog, s.Addr, err)
	}
	return nil
}

// Running reports whether the process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Kill kills the process (SIGKILL: no goodbye to the cluster). It is safe
// to call more than once.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Client returns a new client of this one server; the caller closes it.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second, Protocol: 2})
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// do runs one command on addr.
func do(ctx context.Context, addr string, args ...any) *redis.Cmd {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, Protocol: 2})
	defer c.Close()
	return c.Do(ctx, args...)
}

// StartServer starts one redis-server with extra lines of configuration
// (a tls-port beside the plain one, ACL users) and returns it with a function that stops it and
// removes its files.
func StartServer(ctx context.Context, conf string) (*Server, func(), error) {
	dir, err := os.MkdirTemp("", "redisserver")
	if err != nil {
		return nil, nil, err
	}
	s, err := newServer("redis-server", dir, "appendonly no\nsave \"\"\n"+conf)
	if err == nil {
		err = s.Start(ctx)
	}
	stop := func() {
		if s != nil {
			s.Kill()
		}
		os.RemoveAll(dir)
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return s, stop, nil
}
