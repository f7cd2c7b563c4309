//go:build unix

package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushcluster/pushcluster/internal/testredis"
	"github.com/pushcluster/pushcluster/pkg/node"
)

// A node that shuts down closes its connections (WebSocket with "going
// away"); the clients resume on another node without loss.
func TestGracefulShutdownHandsClientsOver(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	b := c.start("b")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, err := node.New(node.Config{Listener: ln, RedisURL: c.redisURL, Prefix: c.prefix, Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	ta := &testNode{Node: a, base: "http://" + ln.Addr().String()}

	s := openSSE(t, sseURL(ta, "bye"), "")
	w := dialWS(t, ta, "?channel=bye")
	s.waitWelcome()
	w.waitType("subscribed", 1)
	want := []string{c.xaddSeq("bye", 0)}
	s.waitData(1)
	w.waitData(1)

	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	<-s.done
	if !errors.Is(s.err, io.EOF) && !errors.Is(s.err, io.ErrUnexpectedEOF) {
		t.Errorf("SSE stream ended with %v, want EOF", s.err)
	}
	<-w.done
	if code := websocket.CloseStatus(w.err); code != websocket.StatusServiceRestart {
		t.Errorf("WebSocket closed with %v, want 1012 service restart", w.err)
	}
	want = append(want, c.xaddSeq("bye", 1))
	s2 := openSSE(t, sseURL(b, "bye"), s.lastEventID())
	equalStrings(t, "resumed on b", s2.waitData(1), want[1:])
}

// Without persistence a restarted Redis has lost its streams: clients are
// told with a gap, then live delivery goes on.
func TestRedisLosesData(t *testing.T) {
	t.Parallel()
	srv := testredis.Own(t)
	c := newClusterOn(t, srv)
	a := c.start("a")
	s := openSSE(t, sseURL(a, "lost"), "")
	s.waitWelcome()
	c.xaddSeq("lost", 0)
	s.waitData(1)
	srv.Stop()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	var want []string
	checkFor(t, defaultWait, func() error { // the client reconnects lazily
		return c.rdb.Ping(context.Background()).Err()
	})
	for i := 1; i < 4; i++ {
		want = append(want, c.xaddSeq("lost", i))
	}
	equalStrings(t, "after the loss", s.waitData(4)[1:], want)
	if len(s.named("push.gap")) != 1 {
		t.Errorf("gaps: %+v, want one", s.named("push.gap"))
	}
}

func TestHealthAndHistory(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a")
	if code := getJSON(t, a.base+"/healthz", nil); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	var ready struct {
		Ready       bool
		Redis, Node string
	}
	// Ready once the wake-up path is proven: the first probe, milliseconds in.
	checkFor(t, defaultWait, func() error {
		if code := getJSON(t, a.base+"/readyz", &ready); code != http.StatusOK || !ready.Ready || ready.Node != "a" {
			return fmt.Errorf("/readyz: %d %+v", code, ready)
		}
		return nil
	})
	var ids []string
	for i := range 5 {
		ids = append(ids, c.xadd("hist", "event", "myEve", "data", string(rune('a'+i))))
	}
	publish(t, a, map[string]string{"channel": "hist", "data": "private", "to": "someone"})
	type page struct {
		Entries []struct{ ID, Event, Data string }
		Last    string
		More    bool
	}
	var p page
	// Without since: the newest entries, oldest first, less private ones.
	getJSON(t, a.base+"/api/history?channel=hist&limit=3", &p)
	if len(p.Entries) != 2 || p.Entries[0].ID != ids[3] || p.Entries[1].ID != ids[4] || p.More {
		t.Errorf("newest page: %+v", p)
	}
	var all []string
	since := "0-0"
	for {
		var q page
		getJSON(t, a.base+"/api/history?channel=hist&limit=2&since="+since, &q)
		for _, e := range q.Entries {
			all = append(all, e.Data)
		}
		since = q.Last
		if !q.More {
			break
		}
	}
	equalStrings(t, "polling history", all, []string{"a", "b", "c", "d", "e"})
}

// /metrics reports, in the Prometheus text format, what the node did.
func TestMetrics(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a")
	s := openSSE(t, sseURL(a, "m"), "")
	w := dialWS(t, a, "?channel=m")
	s.waitWelcome()
	w.waitType("subscribed", 1)
	publish(t, a, map[string]string{"channel": "m", "data": "x"})
	s.waitData(1)
	w.waitData(1)
	openSSE(t, sseURL(a, "m"), "garbage").waitNamed("push.gap", 1)
	waitNotified(t, a)

	resp, err := http.Get(a.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := string(readAll(t, resp))
	for _, want := range []string{
		`pushcluster_connections{transport="sse"} 2`,
		`pushcluster_connections{transport="websocket"} 1`,
		`pushcluster_subscriptions 3`,
		`pushcluster_channels_of_interest 1`,
		`pushcluster_deliveries_total 2`,
		`pushcluster_publishes_total{via="http"} 1`,
		`pushcluster_gaps_total{reason="malformed"} 1`,
		`pushcluster_doorbell_notified 1`,
		`pushcluster_redis_read_seconds_count`,
		`pushcluster_slow_consumer_disconnects_total 0`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// A connection keeps receiving long after its first write: the write
// timeout bounds each blocking write, never the connection's life.
func TestWriteTimeoutIsPerWrite(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", func(cfg *node.Config) { cfg.Transport.WriteTimeout = 100 * time.Millisecond })
	s := openSSE(t, sseURL(a, "wt"), "")
	w := dialWS(t, a, "?channel=wt")
	s.waitWelcome()
	w.waitType("subscribed", 1)
	var want []string
	for i := range 3 {
		time.Sleep(150 * time.Millisecond) // let the timeout pass: time itself is what is tested
		want = append(want, c.xaddSeq("wt", i))
		equalStrings(t, "SSE", s.waitData(len(want)), want)
		equalStrings(t, "WebSocket", w.waitData(len(want)), want)
	}
}

// Idle streams get comment heartbeats, so proxies keep them open; the
// comments reach the client between events.
func TestSSEHeartbeats(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", func(cfg *node.Config) { cfg.Transport.Heartbeat = 100 * time.Millisecond })
	s := openSSE(t, sseURL(a, "hb"), "")
	s.waitWelcome()
	c.xaddSeq("hb", 0) // the parser counts comments as it reads the next event
	checkFor(t, defaultWait, func() error {
		s.mu.Lock()
		n := s.comments
		s.mu.Unlock()
		if n < 2 {
			c.xaddSeq("hb", 1)
			return fmt.Errorf("%d heartbeats", n)
		}
		return nil
	})
}

// The node pings idle WebSocket clients each heartbeat; one that leaves a
// ping unanswered for a whole interval is closed, one that answers stays.
func TestWebSocketPingsAndDeadPeers(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", func(cfg *node.Config) { cfg.Transport.Heartbeat = 100 * time.Millisecond })
	alive := dialWS(t, a, "?channel=p")
	dead := dialWS(t, a, "?channel=p")
	alive.waitType("subscribed", 1)
	dead.waitType("subscribed", 1)
	stallWS(dead) // stops reading once its current read returns, so it answers no ping
	want := []string{c.xaddSeq("p", 0)}
	checkFor(t, defaultWait, func() error {
		if n := a.Server().Stats().Connections["websocket"]; n != 1 {
			return fmt.Errorf("%d WebSocket connections open, want the answering one", n)
		}
		return nil
	})
	dead.waitClosed()
	time.Sleep(300 * time.Millisecond) // several more heartbeats: time itself is what is tested
	want = append(want, c.xaddSeq("p", 1))
	equalStrings(t, "answering client", alive.waitData(2), want)
}

// An idle keep-alive connection is closed after the idle timeout, while SSE
// and WebSocket streams outlive it, and the read timeout, without traffic.
func TestIdleTimeoutSparesStreams(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", func(cfg *node.Config) {
		cfg.IdleTimeout, cfg.ReadTimeout = 300*time.Millisecond, 200*time.Millisecond
	})
	s := openSSE(t, sseURL(a, "idle"), "")
	w := dialWS(t, a, "?channel=idle")
	s.waitWelcome()
	w.waitType("subscribed", 1)

	conn, status := rawGet(t, a, "/healthz")
	if status != 200 {
		t.Fatalf("/healthz: %d", status)
	}
	// Only a deadlock detector: the node must close the connection long before.
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("idle keep-alive connection: read %d bytes, %v; want it closed by the node", n, err)
	}
	want := []string{c.xaddSeq("idle", 0)}
	equalStrings(t, "SSE after the idle timeout", s.waitData(1), want)
	equalStrings(t, "WebSocket after the idle timeout", w.waitData(1), want)
}

// A draining node sends new streams on at once: an SSE stream gets its
// welcome, carrying the position the client brought and a short retry, and
// ends; a WebSocket is closed with 1012 right after its handshake. Neither
// waits for the drain. The drain's log line counts every connection.
func TestDrainingNodeSendsNewStreamsOn(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	var logs logBuffer
	a := c.start("a", func(cfg *node.Config) {
		cfg.Transport.DrainTimeout = 20 * time.Second
		cfg.Logger = slogTo(&logs)
	})
	const held = 20
	for range held {
		openSSE(t, sseURL(a, "held"), "").waitWelcome()
	}
	id := c.xadd("held", "data", "before the drain")
	go a.stop()
	checkFor(t, defaultWait, func() error {
		var r struct{ Draining bool }
		getJSON(t, a.base+"/readyz", &r)
		if !r.Draining {
			return errors.New("not draining yet")
		}
		return nil
	})

	s := openSSE(t, sseURL(a, "held"), id)
	<-s.done
	if n := a.Registry().Connections(); n == 0 {
		t.Fatal("the drain ended before the new stream: this proves nothing")
	}
	if !errors.Is(s.err, io.EOF) {
		t.Errorf("the new stream ended with %v, want a clean end", s.err)
	}
	if w := s.named("push.welcome"); len(w) != 1 || s.lastEventID() != id {
		t.Errorf("welcome %+v with id %q, want one carrying %q", w, s.lastEventID(), id)
	}
	if r := s.retry(); r <= 0 || r > time.Second {
		t.Errorf("retry %v, want a short one", r)
	}
	w, status := dialWSOpts(t, a, "?channel=held", nil)
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("WebSocket handshake: %d", status)
	}
	if code := w.closeStatus(); code != websocket.StatusServiceRestart {
		t.Errorf("new WebSocket closed with %v, want 1012", code)
	}
	if n := a.Registry().Connections(); n == 0 {
		t.Fatal("the drain ended before the new WebSocket")
	}
	if st := a.Server().Stats().SentOn; st != 2 {
		t.Errorf("%d streams sent on, want 2", st)
	}
	if !strings.Contains(logs.String(), fmt.Sprintf(`msg="node draining" node=a connections=%d`, held)) {
		t.Errorf("the drain's log line does not count %d connections:\n%s", held, logs.String())
	}
}
