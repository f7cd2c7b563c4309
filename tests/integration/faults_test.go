//go:build integration

package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Load per fault: within two shared cores with the race detector on.
const (
	sseClients  = 200
	wsClients   = 200
	channels    = 4
	publishRate = 50 // XADDs per second, round-robin over the channels
)

// fault does something to the cluster and undoes it, returning once the
// cluster is whole again. lossy: Redis loses acknowledged data, so
// messages may be missing, but only behind a gap signal. caughtUp returns
// a condition for poll: every client has what was acknowledged until now.
type fault struct {
	name  string
	lossy bool
	do    func(ctx context.Context, s *stack, caughtUp func() func() error) error
}

var faults = []fault{
	{name: "node killed (SIGKILL)", do: func(ctx context.Context, s *stack, caughtUp func() func() error) error {
		return s.downAndBack(ctx, "node2", caughtUp, "kill", "-s", "KILL")
	}},
	{name: "node stopped (SIGTERM, drain)", do: func(ctx context.Context, s *stack, caughtUp func() func() error) error {
		return s.downAndBack(ctx, "node3", caughtUp, "stop", "-t", "35")
	}},
	{name: "rolling restart of every node", do: func(ctx context.Context, s *stack, caughtUp func() func() error) error {
		for _, n := range nodeServices {
			if _, err := docker(ctx, "restart", "-t", "35", s.ids[n]); err != nil {
				return err
			}
			if err := s.waitHealthy(ctx, n); err != nil {
				return err
			}
			if err := s.waitRouted(ctx, n); err != nil {
				return err
			}
		}
		return nil
	}},
	{name: "node cut off the network, reconnected", do: func(ctx context.Context, s *stack, caughtUp func() func() error) error {
		if _, err := docker(ctx, "network", "disconnect", s.network, s.ids["node1"]); err != nil {
			return err
		}
		// Its clients hear nothing more from it: they resume elsewhere once
		// HAProxy gives up on the silent connections (timeout server/tunnel).
		err := poll(ctx, 2*time.Minute, caughtUp())
		if cerr := s.connect(ctx, "node1"); cerr != nil {
			return cerr
		}
		if err != nil {
			return err
		}
		return s.whole(ctx)
	}},
	{name: "Redis paused 10 s", do: func(ctx context.Context, s *stack, caughtUp func() func() error) error {
		if _, err := docker(ctx, "pause", s.ids["redis"]); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
		if _, err := docker(ctx, "unpause", s.ids["redis"]); err != nil {
			return err
		}
		return s.whole(ctx)
	}},
	{name: "Redis killed, restarted with its AOF", do: func(ctx context.Context, s *stack, caughtUp func() func() error) error {
		return s.redisRestart(ctx)
	}},
	{name: "Redis restarted without its data", lossy: true, do: func(ctx context.Context, s *stack, caughtUp func() func() error) error {
		// Freeze the nodes first, so that Redis acknowledges messages no
		// node has read: those are lost for good, and every client must be
		// told so.
		for _, n := range nodeServices {
			if _, err := docker(ctx, "pause", s.ids[n]); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		// The append-only file records the FLUSHALL: Redis comes back
		// empty, as one without persistence would.
		_, err := docker(ctx, "exec", s.ids["redis"], "redis-cli", "FLUSHALL")
		if err == nil {
			err = s.redisKillStart(ctx)
		}
		for _, n := range nodeServices {
			if _, uerr := docker(ctx, "unpause", s.ids[n]); uerr != nil && err == nil {
				err = uerr
			}
		}
		if err != nil {
			return err
		}
		return s.whole(ctx)
	}},
}

// downAndBack takes a node down with the docker command given, waits until
// every client has moved and caught up, and starts it again.
func (s *stack) downAndBack(ctx context.Context, node string, caughtUp func() func() error, cmd ...string) error {
	if _, err := docker(ctx, append(cmd, s.ids[node])...); err != nil {
		return err
	}
	if err := poll(ctx, 2*time.Minute, caughtUp()); err != nil {
		return fmt.Errorf("clients of %s did not resume elsewhere: %w", node, err)
	}
	if _, err := docker(ctx, "start", s.ids[node]); err != nil {
		return err
	}
	return s.whole(ctx)
}

func (s *stack) redisRestart(ctx context.Context) error {
	if err := s.redisKillStart(ctx); err != nil {
		return err
	}
	return s.whole(ctx)
}

// redisKillStart kills Redis with SIGKILL and starts it again.
func (s *stack) redisKillStart(ctx context.Context) error {
	if _, err := docker(ctx, "kill", "-s", "KILL", s.ids["redis"]); err != nil {
		return err
	}
	// restart: unless-stopped may have started it already.
	_, err := docker(ctx, "start", s.ids["redis"])
	return err
}

// whole waits until Redis and every node are healthy and routed to.
func (s *stack) whole(ctx context.Context) error {
	if err := s.waitHealthy(ctx, append([]string{"redis"}, nodeServices...)...); err != nil {
		return err
	}
	return s.waitRouted(ctx, nodeServices...)
}

// TestFaults runs each fault in turn on the shared cluster, with fresh
// clients and channels each time, and prints a table of the figures.
func TestFaults(t *testing.T) {
	var rows strings.Builder
	for i, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			tl := runFault(t, i, f)
			if tl != nil {
				rows.WriteString(tl.row())
			}
		})
	}
	t.Logf("faults, through HAProxy, %d SSE + %d WebSocket clients, %d XADD/s over %d channels:\n\n%s%s",
		sseClients, wsClients, publishRate, channels, tableHeader, rows.String())
}

func runFault(t *testing.T, idx int, f fault) *tally {
	ctx := testContext(t, 5*time.Minute)
	if err := cluster.restore(ctx); err != nil {
		t.Fatalf("the cluster is not whole before the fault: %v", err)
	}
	var chans []string
	for c := range channels {
		chans = append(chans, fmt.Sprintf("fault%d-%c", idx, 'a'+c))
	}
	recs, stopClients := startClients(t, chans)
	pub := newPublisher(cluster.redisAddr, chans, publishRate)
	defer pub.close()
	pubCtx, stopPub := context.WithCancel(ctx)
	var pubDone sync.WaitGroup
	pubDone.Go(func() { pub.run(pubCtx) })
	defer func() { stopPub(); pubDone.Wait() }()

	caughtUp := func() func() error {
		want := map[string]int{}
		for _, ch := range chans {
			want[ch] = pub.lastAcked(ch)
		}
		return func() error {
			for _, r := range recs {
				for _, ch := range r.channels {
					if got := r.last(ch); got < want[ch] {
						return fmt.Errorf("%s has %s up to %d of %d", r.name, ch, got, want[ch])
					}
				}
			}
			return nil
		}
	}
	published := func(n int) func() error {
		from := totalSent(pub)
		return func() error {
			if got := totalSent(pub) - from; got < n {
				return fmt.Errorf("%d of %d published", got, n)
			}
			return nil
		}
	}
	if err := poll(ctx, time.Minute, published(publishRate*3)); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, time.Minute, caughtUp()); err != nil {
		t.Fatalf("before the fault: %v", err)
	}
	t0 := time.Now()
	if err := f.do(ctx, cluster, caughtUp); err != nil {
		t.Errorf("fault: %v", err)
	}
	healed := time.Since(t0)
	// Keep publishing a while on the whole cluster, then let delivery finish.
	if err := poll(ctx, time.Minute, published(publishRate*3)); err != nil {
		t.Error(err)
	}
	stopPub()
	pubDone.Wait()
	if err := poll(ctx, 2*time.Minute, caughtUp()); err != nil {
		t.Errorf("after the fault: %v", err)
	}
	stopClients()
	tl := check(f.name, recs, pub, t0)
	t.Logf("fault healed after %v\n%s%s", healed.Round(100*time.Millisecond), tableHeader, tl.row())
	if len(tl.why) > 0 {
		t.Logf("some of the refusals:\n  %s", strings.Join(tl.why, "\n  "))
	}
	for _, p := range tl.failures(f.lossy) {
		t.Error(p)
	}
	return tl
}

func totalSent(p *publisher) int {
	n := 0
	for _, ch := range p.channels {
		n += len(p.sent(ch))
	}
	return n
}

// startClients connects the SSE and WebSocket clients through HAProxy, one
// channel each, every fifth two, and waits until all are subscribed.
func startClients(t *testing.T, chans []string) ([]*record, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hc := &http.Client{Transport: &http.Transport{
		DialContext:        (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		DisableKeepAlives:  true,
		DisableCompression: true,
	}}
	var wg sync.WaitGroup
	var recs []*record
	subs := func(i int) []string {
		if i%5 == 0 {
			return []string{chans[i%len(chans)], chans[(i+1)%len(chans)]}
		}
		return []string{chans[i%len(chans)]}
	}
	for i := range sseClients {
		r := newRecord(fmt.Sprintf("sse%d", i), subs(i))
		recs = append(recs, r)
		c := newSSEClient(cluster.base, hc, r)
		wg.Go(func() { c.run(ctx) })
	}
	for i := range wsClients {
		r := newRecord(fmt.Sprintf("ws%d", i), subs(i))
		recs = append(recs, r)
		c := newWSClient(cluster.base, r)
		wg.Go(func() { c.run(ctx) })
	}
	stop := sync.OnceFunc(func() {
		cancel()
		wg.Wait()
		hc.CloseIdleConnections()
	})
	t.Cleanup(stop)
	err := poll(ctx, time.Minute, func() error {
		for _, r := range recs {
			if !r.ready() {
				return fmt.Errorf("%s is not subscribed yet", r.name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs, stop
}
