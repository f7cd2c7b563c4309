//go:build unix

package tests

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	pcluster "github.com/pushcluster/pushcluster/pkg/cluster"
)

var (
	nodeBinOnce sync.Once
	nodeBin     string
	nodeBinErr  error
)

// buildNode builds cmd/node once per test run, for tests that need a node
// in a process of its own: one to SIGKILL or SIGSTOP.
func buildNode(t *testing.T) string {
	t.Helper()
	nodeBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pushcluster-node-")
		if err != nil {
			nodeBinErr = err
			return
		}
		nodeBin = filepath.Join(dir, "node")
		out, err := exec.Command("go", "build", "-o", nodeBin, "../cmd/node").CombinedOutput()
		if err != nil {
			nodeBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if nodeBinErr != nil {
		t.Fatal(nodeBinErr)
	}
	return nodeBin
}

// procNode is a node running as a process of its own on its own address.
type procNode struct {
	*testNode
	t      *testing.T
	args   []string
	cmd    *exec.Cmd
	log    *bytes.Buffer
	gossip string
}

func (c *cluster) startProcess(name string, join []string, extra ...string) *procNode {
	c.t.Helper()
	host := nextHost()
	p := &procNode{t: c.t, gossip: net.JoinHostPort(host, "7946"),
		testNode: &testNode{base: "http://" + net.JoinHostPort(host, "6788")}}
	p.args = []string{
		"-listen", net.JoinHostPort(host, "6788"), "-redis-url", c.redisURL, "-prefix", c.prefix,
		"-node-name", name, "-cluster-bind", p.gossip, "-cluster-profile", "local",
		"-drain-timeout", "200ms", "-log-level", "debug",
	}
	for _, j := range join {
		p.args = append(p.args, "-cluster-join", j)
	}
	p.args = append(p.args, extra...)
	p.start()
	c.t.Cleanup(p.kill)
	return p
}

func (p *procNode) start() {
	p.t.Helper()
	p.log = &bytes.Buffer{}
	p.cmd = exec.Command(buildNode(p.t), p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	checkFor(p.t, 15*time.Second, func() error {
		resp, err := http.Get(p.base + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

func (p *procNode) signal(sig syscall.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

func (p *procNode) kill() {
	if p.cmd != nil && p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
	if p.t.Failed() {
		p.t.Logf("node process log:\n%s", p.log)
	}
}

// A member that stops answering leaves queries partial; one killed with
// SIGKILL is seen dead and drops out of them; restarted under its name on
// its address, it rejoins.
func TestMemberKilledAndRestarted(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.startMember("a", nil)
	b := c.startMember("b", []string{a.Cluster().GossipAddr()})
	p := c.startProcess("p", []string{a.Cluster().GossipAddr()})
	for _, n := range []*testNode{a, b} {
		wantMembers(t, n, map[string]string{"a": "alive", "b": "alive", "p": "alive"})
	}
	onP := openSSE(t, sseURL(p.testNode, "who"), "")
	onP.waitWelcome()
	onB := openSSE(t, sseURL(b, "who"), "")
	onB.waitWelcome()
	checkFor(t, 10*time.Second, func() error {
		if got := presence(t, a, "who"); len(got.Clients) != 2 || got.Partial {
			return fmt.Errorf("presence before the stop: %+v", got)
		}
		return nil
	})

	p.signal(syscall.SIGSTOP)                  // alive to the kernel, silent to everyone
	checkFor(t, 10*time.Second, func() error { // until memberlist gives up on p, questions to it go unanswered
		got := presence(t, a, "who")
		if !got.Partial || !slices.Equal(got.Missing, []string{"p"}) || len(got.Clients) != 1 || got.Clients[0].Node != "b" {
			return fmt.Errorf("presence with p stopped: %+v", got)
		}
		return nil
	})
	// The delivery path does not wait on the cluster: b still delivers.
	id := c.xadd("who", "data", "still here")
	equalStrings(t, "b while p is stopped", onB.waitData(1), []string{"still here"})

	p.signal(syscall.SIGKILL)
	p.cmd.Wait()
	for _, n := range []*testNode{a, b} {
		wantMembers(t, n, map[string]string{"p": "dead"})
	}
	if got := presence(t, a, "who"); got.Partial || len(got.Clients) != 1 {
		t.Fatalf("presence with p dead: %+v", got)
	}

	p.start()
	for _, n := range []*testNode{a, b} {
		wantMembers(t, n, map[string]string{"a": "alive", "b": "alive", "p": "alive"})
	}
	back := openSSE(t, sseURL(p.testNode, "who"), id)
	c.xadd("who", "data", "after restart")
	equalStrings(t, "resumed on the restarted p", back.waitData(1), []string{"after restart"})
}

type presenceAnswer struct {
	Clients []pcluster.Client
	Partial bool
	Missing []string
}

func presence(t testing.TB, n *testNode, channel string) presenceAnswer {
	t.Helper()
	var p presenceAnswer
	if code := getJSON(t, n.base+"/api/presence?channel="+channel, &p); code != http.StatusOK {
		t.Fatalf("presence: %d", code)
	}
	return p
}

var _ = context.Background
