package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pushcluster/pushcluster/internal/waitfor"
)

// childStopTimeout bounds the wait for a child after SIGTERM before SIGKILL.
const childStopTimeout = 10 * time.Second

// child is a process the tool started and stops: a baseline server (this
// binary re-executed) or a node.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string // where it listens
	done  chan struct{}
	err   error
	// exited is when the tool saw the child exit; read it after done.
	exited time.Time
}

// pid returns the child's process ID.
func (c *child) pid() int { return c.cmd.Process.Pid }

// url returns the child's base URL.
func (c *child) url() string { return "http://" + c.addr }

func newChildCmd(path string, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Stderr = os.Stderr
	// A child must not outlive the tool, however the tool ends.
	dieWithParent(cmd)
	return cmd
}

// startSelf re-executes this binary with a hidden subcommand that prints
// "listening <addr>" as its first line.
func startSelf(sub string, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: failed to find this binary: %w", err)
	}
	cmd := newChildCmd(exe, append([]string{sub}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c, err := launch(sub, cmd, stdin)
	if err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		c.stop()
		return nil, fmt.Errorf("bench: %s did not say where it listens (%q): %v", sub, line, err)
	}
	c.addr = addr
	return c, nil
}

func launch(name string, cmd *exec.Cmd, stdin io.WriteCloser) (*child, error) {
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: failed to start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		c.exited = time.Now()
		close(c.done)
	}()
	return c, nil
}

// stop closes the child's stdin, sends SIGTERM, and kills it if it has not
// exited within childStopTimeout. It waits for the child either way.
func (c *child) stop() error {
	if c.stdin != nil {
		c.stdin.Close()
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(childStopTimeout):
		c.cmd.Process.Kill()
		<-c.done
	}
	var exit *exec.ExitError
	if errors.As(c.err, &exit) && !exit.Exited() {
		return nil // ended by our signal
	}
	return c.err
}

// buildNode compiles ./cmd/node of the module in the working directory into
// dir and returns the binary's path.
func buildNode(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "pcnode")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/node")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("bench: failed to build ./cmd/node (run from the repository root): %w", err)
	}
	return out, nil
}

// startNode runs the node binary on a free loopback port against redisURL,
// with extra flags after the tool's own, and waits until it is ready.
func startNode(ctx context.Context, bin, redisURL, prefix string, extra ...string) (*child, error) {
	addr, err := freeAddr("127.0.0.1")
	if err != nil {
		return nil, err
	}
	args := append([]string{"-redis-url", redisURL, "-prefix", prefix, "-node-name", "bench-node", "-log-level", "warn"}, nodeAuthArgs()...)
	return runNode(ctx, bin, addr, append(args, extra...)...)
}

// runNode runs the node binary listening on addr with args, and waits
// until it is ready.
func runNode(ctx context.Context, bin, addr string, args ...string) (*child, error) {
	cmd := newChildCmd(bin, append([]string{"-listen", addr}, args...)...)
	c, err := launch("node", cmd, nil)
	if err != nil {
		return nil, err
	}
	c.addr = addr
	if err := waitReadyz(ctx, c); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// waitReadyz polls the node's /readyz until it answers 200.
func waitReadyz(ctx context.Context, c *child) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	ready := func() bool {
		select {
		case <-c.done:
			return true
		default:
		}
		resp, err := client.Get(c.url() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	if err := waitfor.Until(ctx, 30*time.Second, 100*time.Millisecond, ready); err != nil {
		return fmt.Errorf("bench: node on %s not ready: %w", c.addr, err)
	}
	select {
	case <-c.done:
		return fmt.Errorf("bench: node exited: %v", c.err)
	default:
		return nil
	}
}

// freeAddr returns an address on host with a port free right now.
func freeAddr(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
