package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushcluster/pushcluster/internal/waitfor"
)

func testConfig(t *testing.T) Config {
	t.Helper()
	src, err := parseSources("127.0.0.2-127.0.0.4", "", false)
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		ConnectTimeout: 5 * time.Second, PublishWorkers: 2, Payload: 64, Sources: src,
		Logger: slog.New(slog.DiscardHandler), Progress: io.Discard, ChannelBase: "t",
	}
}

// startFloor runs a floor server in-process; writing to the returned
// writer publishes.
func startFloor(t *testing.T) (string, io.WriteCloser) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- serveFloor(l, pr) }()
	t.Cleanup(func() {
		pw.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + l.Addr().String(), pw
}

func TestFleetCountsSSEDeliveries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	base, in := startFloor(t)
	r := newRunner(testConfig(t))
	t.Cleanup(r.close)
	ph, err := r.newPhase(ctx, base, 6, 0, newChannelPlan(ChannelSpec{Mode: ModeHot}, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ph.close)
	ph.fleet.start(ctx, 0)
	if err := ph.fleet.waitReady(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ph.env.win.start.Store(start.UnixNano())
	pub := newPublisher(ph.env, &floorSink{w: in})
	pub.burst(ctx, []int{0}, 20)
	ph.env.win.end.Store(time.Now().UnixNano())
	sent := pub.sentInWindow()
	err = waitfor.Until(ctx, 10*time.Second, 5*time.Millisecond, func() bool {
		_, expected, received := ph.steady(start, sent)
		return expected == 120 && received == expected
	})
	if err != nil {
		steady, expected, received := ph.steady(start, sent)
		t.Fatalf("%d steady clients received %d of %d", steady, received, expected)
	}
	// A repeated sequence number is a duplicate; a skipped one, a hole.
	fmt.Fprintf(in, "%s\n", appendPayload(nil, stamp{Run: r.run, Seq: 20, Sent: time.Now().UnixNano()}, 0))
	fmt.Fprintf(in, "%s\n", appendPayload(nil, stamp{Run: r.run, Seq: 23, Sent: time.Now().UnixNano()}, 0))
	fmt.Fprintf(in, "%s\n", appendPayload(nil, stamp{Run: r.run + 1, Seq: 24, Sent: time.Now().UnixNano()}, 0))
	m := ph.env.m
	err = waitfor.Until(ctx, 10*time.Second, 5*time.Millisecond, func() bool {
		return m.dups.Load() == 6 && m.holes.Load() == 12 && m.foreign.Load() == 6
	})
	if err != nil {
		t.Fatalf("dups %d, holes %d, foreign %d; want 6, 12, 6", m.dups.Load(), m.holes.Load(), m.foreign.Load())
	}
	if n := m.latency.Snapshot().Count(); n != 120 {
		t.Fatalf("%d latencies in the window, want 120", n)
	}
}

// wsPushServer answers /ws like a node: subscribed with a position, then,
// on a fresh subscription, count messages and a gap before it goes away;
// on a resumed one (since given), nothing more. It records the sinces.
func wsPushServer(t *testing.T, run uint32, count int, sinces chan<- string) string {
	t.Helper()
	var handlers sync.WaitGroup
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		since := r.URL.Query().Get("since")
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ch := r.URL.Query().Get("channel")
		write := func(v any) error {
			b, _ := json.Marshal(v)
			return c.Write(r.Context(), websocket.MessageText, b)
		}
		write(map[string]string{"type": "welcome", "client": "x"})
		write(map[string]string{"type": "subscribed", "channel": ch, "position": "5-0"})
		if since != "" {
			sinces <- since
			<-c.CloseRead(context.Background()).Done() // until the client goes
			return
		}
		for i := 1; i <= count; i++ {
			data := appendPayload(nil, stamp{Run: run, Seq: uint64(i), Sent: time.Now().UnixNano()}, 80)
			write(map[string]string{"type": "message", "channel": ch, "id": fmt.Sprintf("%d-0", 5+i), "data": string(data)})
		}
		write(map[string]string{"type": "gap", "channel": ch, "reason": "trimmed", "resume": "99-0"})
		c.Close(websocket.StatusGoingAway, "bye")
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-served
		handlers.Wait()
	})
	return "http://" + l.Addr().String()
}

func TestWebSocketClientFollowsFramesAndResumes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := newRunner(testConfig(t))
	t.Cleanup(r.close)
	sinces := make(chan string, 3)
	base := wsPushServer(t, r.run, 10, sinces)
	ph, err := r.newPhase(ctx, base, 0, 3, newChannelPlan(ChannelSpec{Mode: ModeMany, N: 3}, "t"))
	if err != nil {
		t.Fatal(err)
	}
	ph.fleet.start(ctx, 0)
	for range 3 {
		if since := <-sinces; since != "99-0" {
			t.Errorf("resumed from %q, want the gap's resume position 99-0", since)
		}
	}
	ph.close()
	m := ph.env.m
	if m.deliveries.Load() != 30 || m.gaps.Load() != 3 || m.reconnects.Load() != 3 || m.established.Load() != 3 {
		t.Fatalf("deliveries %d gaps %d reconnects %d established %d; want 30, 3, 3, 3",
			m.deliveries.Load(), m.gaps.Load(), m.reconnects.Load(), m.established.Load())
	}
	for _, c := range ph.fleet.clients {
		if c.transport != transportWS || c.lastSeq != 10 {
			t.Errorf("client %d: %s at seq %d", c.i, c.transport, c.lastSeq)
		}
	}
	if m.holes.Load() != 0 || m.dups.Load() != 0 || m.errors.Load() != 0 {
		t.Errorf("holes %d dups %d errors %d", m.holes.Load(), m.dups.Load(), m.errors.Load())
	}
}

func TestSSERequestResumes(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("http://127.0.0.1:6788/push")
	req := sseRequest(u, []string{"a b"}, "1732590000000-3")
	for _, want := range []string{"GET /push/sse?channel=a+b HTTP/1.1\r\n", "Host: 127.0.0.1:6788\r\n", "Last-Event-ID: 1732590000000-3\r\n", "\r\n\r\n"} {
		if !strings.Contains(req, want) {
			t.Errorf("request lacks %q:\n%s", want, req)
		}
	}
	if strings.Contains(sseRequest(u, []string{"a"}, ""), "Last-Event-ID") {
		t.Error("a fresh subscription sent Last-Event-ID")
	}
	if req := sseRequest(u, []string{"a", "b"}, ""); !strings.Contains(req, "GET /push/sse?channel=a&channel=b HTTP/1.1\r\n") {
		t.Errorf("two channels: %s", req)
	}
}

func TestTargetRoutesRoundRobin(t *testing.T) {
	t.Parallel()
	a, _ := url.Parse("http://127.0.0.101:1")
	b, _ := url.Parse("http://127.0.0.102:1")
	c, _ := url.Parse("http://127.0.0.103:1")
	tg := newTarget(a, nil)
	if tg.pick() != a || tg.pick() != a {
		t.Fatal("one base: every dial goes to it")
	}
	tg.route(b, c)
	got := map[*url.URL]int{}
	for range 10 {
		got[tg.pick()]++
	}
	if got[a] != 0 || got[b] != 5 || got[c] != 5 {
		t.Fatalf("after route(b, c): %d to a, %d to b, %d to c; want 0, 5, 5", got[a], got[b], got[c])
	}
}

func TestFleetInterleavesTransports(t *testing.T) {
	t.Parallel()
	env := &runEnv{plan: newChannelPlan(ChannelSpec{Mode: ModeMany, N: 4}, "t")}
	f := newFleet(env, transportSSE, 7, 3, nil)
	counts := map[string]int{}
	for i, c := range f.clients {
		counts[c.transport]++
		if c.channel != i%4 {
			t.Errorf("client %d on channel %d", i, c.channel)
		}
	}
	if counts[transportSSE] != 7 || counts[transportWS] != 3 || f.clients[0].transport != transportSSE {
		t.Fatalf("transports %v", counts)
	}
	if got := f.subscribers(); got[0] != 3 || got[3] != 2 {
		t.Fatalf("subscribers per channel %v", got)
	}
}

func TestPaceCallsEachOnce(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{0, 2000} {
		var seen []int
		pace(t.Context(), rate, 50, func(i int) { seen = append(seen, i) })
		if len(seen) != 50 || seen[49] != 49 {
			t.Fatalf("rate %v: calls %v", rate, seen)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	pace(ctx, 1000, -1, func(int) {
		if calls++; calls == 10 {
			cancel()
		}
	})
	if calls < 10 {
		t.Fatalf("%d calls", calls)
	}
}
