//go:build unix

package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/testredis"
	"github.com/pushcluster/pushcluster/pkg/node"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/transport"
)

// cluster is a set of nodes sharing one Redis under one key prefix.
type cluster struct {
	t        *testing.T
	redisURL string
	redis    node.RedisConfig // a Redis Cluster or Sentinel group instead of redisURL
	prefix   string
	rdb      redis.UniversalClient
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	u := testredis.URL(t)
	return &cluster{t: t, redisURL: u, prefix: testredis.Prefix(t), rdb: testredis.Client(t)}
}

func newClusterOn(t *testing.T, s *testredis.Server) *cluster {
	return &cluster{t: t, redisURL: s.URL(), prefix: testredis.Prefix(t), rdb: s.Client(t)}
}

type testNode struct {
	*node.Node
	base string // http://127.0.0.1:port
	stop func() // stops the node (drain and all) and waits; safe to call twice
}

// start starts a node; mod may adjust its config.
func (c *cluster) start(name string, mod ...func(*node.Config)) *testNode {
	c.t.Helper()
	cfg := node.Config{
		RedisURL: c.redisURL, Redis: c.redis, Prefix: c.prefix, Name: name,
		ProbeInterval: 200 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Transport: transport.Config{DrainTimeout: 200 * time.Millisecond},
	}
	if os.Getenv("PUSH_TEST_LOG") != "" { // node logs, for debugging a test
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
	}
	for _, m := range mod {
		m(&cfg)
	}
	if cfg.Listener == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			c.t.Fatal(err)
		}
		cfg.Listener = ln
	}
	n, err := node.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				c.t.Errorf("node %s: %v", name, err)
			}
		})
	}
	c.t.Cleanup(stop)
	return &testNode{Node: n, base: "http://" + cfg.Listener.Addr().String(), stop: stop}
}

// xadd publishes with a plain XADD, as any Redis client would.
func (c *cluster) xadd(channel string, values ...any) string {
	c.t.Helper()
	id, err := c.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: c.prefix + channel, Values: values}).Result()
	if err != nil {
		c.t.Fatal(err)
	}
	return id
}

// publish publishes through a node's HTTP API and returns the entry ID.
func publish(t *testing.T, n *testNode, body any) string {
	t.Helper()
	status, resp := postJSON(t, n.base+"/api/publish", body)
	if status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, resp)
	}
	var r struct{ ID string }
	if err := json.Unmarshal(resp, &r); err != nil || r.ID == "" {
		t.Fatalf("publish answer %s: %v", resp, err)
	}
	return r.ID
}

func postJSON(t *testing.T, u string, body any) (int, []byte) {
	t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		raw, _ = json.Marshal(body)
	}
	resp, err := http.Post(u, "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func jsonOf(t testing.TB, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func getJSON(t testing.TB, u string, v any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %d %s: %v", u, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// checkFor polls fn until it returns nil or total passes.
func checkFor(t testing.TB, total time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			if os.Getenv("PUSH_TEST_LOG") != "" {
				buf := make([]byte, 1<<22)
				os.Stderr.Write(buf[:runtime.Stack(buf, true)])
			}
			t.Fatalf("condition not met after %v: %v", total, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sseStream is an EventSource-like client: it reads events into a list.
type sseStream struct {
	t      testing.TB
	resp   *http.Response
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	events   []protocol.SSEEvent
	lastID   string
	comments int
	retryMs  int
	err      error
}

func sseURL(n *testNode, channels ...string) string {
	q := url.Values{"channel": channels}
	return n.base + "/sse?" + q.Encode()
}

// openSSE connects to u, sending lastEventID when not empty.
func openSSE(t testing.TB, u, lastEventID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	s := &sseStream{t: t, resp: resp, cancel: cancel, done: make(chan struct{})}
	go s.read()
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) read() {
	defer close(s.done)
	p := protocol.NewSSEParser(s.resp.Body)
	for {
		ev, err := p.Next()
		s.mu.Lock()
		if err != nil {
			s.err = err
			s.mu.Unlock()
			return
		}
		s.events = append(s.events, ev)
		s.lastID = p.LastEventID()
		s.comments = p.Comments
		s.retryMs = p.Retry
		s.mu.Unlock()
	}
}

// close disconnects and returns the last event ID the stream set.
func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.done
}

// retry returns the reconnection time the stream last set, or -1ms.
func (s *sseStream) retry() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.retryMs) * time.Millisecond
}

func (s *sseStream) lastEventID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastID
}

// named returns the events with the given event name.
func (s *sseStream) named(name string) []protocol.SSEEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []protocol.SSEEvent
	for _, ev := range s.events {
		if ev.Event == name {
			out = append(out, ev)
		}
	}
	return out
}

// data returns the data of every event that is not a push.* control event.
func (s *sseStream) data() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ev := range s.events {
		if !strings.HasPrefix(ev.Event, "push.") {
			out = append(out, ev.Data)
		}
	}
	return out
}

func (s *sseStream) waitData(n int) []string {
	s.t.Helper()
	checkFor(s.t, 10*time.Second, func() error {
		if got := len(s.data()); got < n {
			return fmt.Errorf("SSE got %d of %d messages", got, n)
		}
		return nil
	})
	return s.data()
}

// wsClient is a WebSocket client that reads frames into a list.
type wsClient struct {
	t     testing.TB
	conn  *websocket.Conn
	done  chan struct{}
	stall sync.Mutex // held to stop reading

	mu     sync.Mutex
	frames []map[string]any
	err    error
}

func dialWS(t testing.TB, n *testNode, query string) *wsClient {
	t.Helper()
	return dialWSWith(t, n, query, nil)
}

// dialWSWith dials with control applied to the client socket.
func dialWSWith(t testing.TB, n *testNode, query string, control func(string, string, syscall.RawConn) error) *wsClient {
	t.Helper()
	c := &wsClient{t: t, conn: dialWSConn(t, n, query, control), done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.close)
	return c
}

// dialWSConn opens a WebSocket to /ws+query on n, with control applied to
// the client socket.
func dialWSConn(t testing.TB, n *testNode, query string, control func(string, string, syscall.RawConn) error) *websocket.Conn {
	t.Helper()
	u := strings.Replace(n.base, "http://", "ws://", 1) + "/ws" + query
	d := &net.Dialer{Control: control}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	t.Cleanup(hc.CloseIdleConnections)
	conn, _, err := websocket.Dial(context.Background(), u, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(1 << 22)
	return conn
}

func (c *wsClient) read() {
	defer close(c.done)
	for {
		c.stall.Lock()
		c.stall.Unlock()
		_, b, err := c.conn.Read(context.Background())
		c.mu.Lock()
		if err != nil {
			c.err = err
			c.mu.Unlock()
			return
		}
		var f map[string]any
		if err := json.Unmarshal(b, &f); err != nil {
			f = map[string]any{"type": "undecodable", "raw": string(b)}
		}
		c.frames = append(c.frames, f)
		c.mu.Unlock()
	}
}

func (c *wsClient) close() {
	c.conn.CloseNow()
	<-c.done
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.conn.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

// ofType returns the frames of the given type.
func (c *wsClient) ofType(typ string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, f := range c.frames {
		if f["type"] == typ {
			out = append(out, f)
		}
	}
	return out
}

// waitType waits for at least n frames of typ and returns them all.
func (c *wsClient) waitType(typ string, n int) []map[string]any {
	c.t.Helper()
	checkFor(c.t, 10*time.Second, func() error {
		if got := len(c.ofType(typ)); got < n {
			return fmt.Errorf("WebSocket got %d of %d %q frames", got, n, typ)
		}
		return nil
	})
	return c.ofType(typ)
}

func (c *wsClient) data() []string {
	var out []string
	for _, f := range c.ofType("message") {
		s, _ := f["data"].(string)
		out = append(out, s)
	}
	return out
}

func (c *wsClient) waitData(n int) []string {
	c.waitType("message", n)
	return c.data()
}

// lastID returns the id of the last message frame.
func (c *wsClient) lastID() string {
	msgs := c.ofType("message")
	if len(msgs) == 0 {
		return ""
	}
	id, _ := msgs[len(msgs)-1]["id"].(string)
	return id
}

func seqData(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func equalStrings(t testing.TB, what string, got, want []string) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("%s: message %d is %q, want %q (around it: got %q, want %q)",
				what, i, got[i], want[i], window(got, i), window(want, i))
		}
	}
	if len(got) != len(want) {
		n := min(len(got), len(want))
		t.Fatalf("%s: got %d messages, want %d; first difference at %d: got %q, want %q",
			what, len(got), len(want), n, window(got, n), window(want, n))
	}
}

// window returns a few messages around i, for error messages.
func window(msgs []string, i int) []string {
	return msgs[max(0, i-2):min(len(msgs), i+3)]
}

// waitWelcome waits for the push.welcome event and returns it.
func (s *sseStream) waitWelcome() protocol.SSEEvent {
	s.t.Helper()
	checkFor(s.t, 10*time.Second, func() error {
		if len(s.named("push.welcome")) == 0 {
			return fmt.Errorf("no push.welcome yet")
		}
		return nil
	})
	return s.named("push.welcome")[0]
}

// waitQuiet waits until no new event has arrived for a while.
func (s *sseStream) waitQuiet() {
	n := -1
	checkFor(s.t, 20*time.Second, func() error {
		s.mu.Lock()
		cur := len(s.events)
		s.mu.Unlock()
		if cur != n {
			n = cur
			time.Sleep(500 * time.Millisecond)
			return fmt.Errorf("still receiving")
		}
		return nil
	})
}

// xaddSeq publishes "<channel>/<i>" to channel and returns the payload.
func (c *cluster) xaddSeq(channel string, i int) string {
	msg := fmt.Sprintf("%s/%d", channel, i)
	c.xadd(channel, "data", msg)
	return msg
}

// equalPerChannel checks that got holds exactly the messages of want, each
// channel's in order: order holds per channel, not across channels.
// Messages are "<channel>/<n>".
func equalPerChannel(t testing.TB, what string, got, want []string) {
	t.Helper()
	split := func(msgs []string) map[string][]string {
		m := map[string][]string{}
		for _, s := range msgs {
			ch, _, _ := strings.Cut(s, "/")
			m[ch] = append(m[ch], s)
		}
		return m
	}
	g, w := split(got), split(want)
	if len(g) != len(w) {
		t.Fatalf("%s: messages on %d channels, want %d", what, len(g), len(w))
	}
	for ch, msgs := range w {
		equalStrings(t, what+" on "+ch, g[ch], msgs)
	}
}

// waitCount waits, polling tightly, until n messages have arrived.
func (s *sseStream) waitCount(n int) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.data()) < n {
		if time.Now().After(deadline) {
			s.t.Fatalf("SSE got %d of %d messages", len(s.data()), n)
		}
		time.Sleep(time.Millisecond)
	}
}

const defaultWait = 10 * time.Second

func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitNamed waits for n events named name.
func (s *sseStream) waitNamed(name string, n int) []protocol.SSEEvent {
	s.t.Helper()
	checkFor(s.t, defaultWait, func() error {
		if got := len(s.named(name)); got < n {
			return fmt.Errorf("got %d of %d %s events", got, n, name)
		}
		return nil
	})
	return s.named(name)
}

// hasError reports nil once an error frame with code has arrived.
func (c *wsClient) hasError(code string) error {
	for _, f := range c.ofType("error") {
		if f["code"] == code {
			return nil
		}
	}
	return fmt.Errorf("no %s error frame", code)
}
