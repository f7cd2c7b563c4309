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
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushcluster/pushcluster/pkg/node"
)

const secondAPIKey = "second-api-key-0123456789"

// abusable is a node with small limits, so that one address can reach them.
func abusable(cfg *node.Config) {
	secured(cfg)
	cfg.Auth.APIKeys = append(cfg.Auth.APIKeys, secondAPIKey)
	cfg.Transport.MaxConnectionsPerIP = 3
	cfg.Transport.PublishRate = 5 // bursts of 10
	cfg.KeyPublishRate = 5        // bursts of 10
	cfg.ReadHeaderTimeout = 500 * time.Millisecond
	cfg.MaxHeaderBytes = 8 << 10
}

// streamFrom opens an SSE stream through hc and returns its status; a
// stream that opens is closed when the test ends.
func streamFrom(t *testing.T, hc *http.Client, u string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	return 200, nil
}

// One address that floods the node with connections and publishes is
// throttled, while a well-behaved client on another address is not.
func TestFloodFromOneAddress(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", abusable)
	bad, good := clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.3")
	tok := token(t, grant{sub: "u", channels: []string{"*"}, publish: []string{"*"}})
	u := a.base + "/sse?channel=flood&token=" + tok
	for i := range 3 {
		if status, b := streamFrom(t, bad, u); status != 200 {
			t.Fatalf("stream %d from one address: %d %s", i, status, b)
		}
	}
	status, b := streamFrom(t, bad, u)
	checkError(t, "a fourth stream from one address", status, b, 429, "too_many_connections_per_ip")
	wsURL := strings.Replace(a.base, "http", "ws", 1) + "/ws?token=" + tok
	if _, resp, err := websocket.Dial(t.Context(), wsURL, &websocket.DialOptions{HTTPClient: bad}); err == nil || resp == nil || resp.StatusCode != 429 {
		t.Errorf("a WebSocket from the flooding address: %v %v", resp, err)
	}
	if status, b := streamFrom(t, good, u); status != 200 {
		t.Errorf("a stream from another address: %d %s", status, b)
	}

	// WebSocket publishes: the flooding connection gets rate_limited frames.
	conn, _, err := websocket.Dial(t.Context(), wsURL, &websocket.DialOptions{HTTPClient: good})
	if err != nil {
		t.Fatal(err)
	}
	flooder := &wsClient{t: t, conn: conn, done: make(chan struct{})}
	go flooder.read()
	t.Cleanup(flooder.close)
	for i := range 40 {
		flooder.send(map[string]any{"type": "publish", "channel": "flood", "data": fmt.Sprint(i), "ref": i})
	}
	checkFor(t, defaultWait, func() error {
		if n := len(flooder.ofType("ack")) + len(flooder.ofType("error")); n < 40 {
			return fmt.Errorf("%d of 40 answers", n)
		}
		return nil
	})
	acks := len(flooder.ofType("ack"))
	if err := flooder.hasError("rate_limited"); err != nil || acks > 15 || acks < 10 {
		t.Errorf("a flood of 40 publishes: %d acked, %v", acks, err)
	}
	polite := dialWS(t, a, "?token="+tok)
	for i := range 5 {
		polite.send(map[string]any{"type": "publish", "channel": "flood", "data": "p", "ref": i})
	}
	polite.waitType("ack", 5)
	if errs := polite.ofType("error"); len(errs) > 0 {
		t.Errorf("a polite connection was throttled: %v", errs)
	}

	// HTTP publishes: per API key, 429 with Retry-After.
	limited := 0
	for range 30 {
		status, b, h := call(t, bad, "POST", a.base+"/api/publish", map[string]string{"channel": "flood", "data": "k"}, bearer(testAPIKey)...)
		if status == 429 {
			limited++
			checkError(t, "a publish over the key's rate", status, b, 429, "rate_limited")
			if h.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		}
	}
	if limited < 15 {
		t.Errorf("%d of 30 publishes limited, want at least 15", limited)
	}
	publishAs(t, a, secondAPIKey, map[string]string{"channel": "flood", "data": "another key"})
	metricsHave(t, http.DefaultClient, a, `pushcluster_connections_refused_total{limit="per_ip"} 2`)
	metricsHave(t, http.DefaultClient, a, `pushcluster_publishes_rate_limited_total{via="http"}`)

	// An oversized header is refused by net/http with 431.
	status, _, _ = call(t, good, "GET", a.base+"/healthz", nil, "X-Big", strings.Repeat("x", 16<<10))
	if status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 16 KiB header: %d", status)
	}
}

// Slowloris: connections from one address that send their handshake a
// byte at a time are cut off at the header timeout, and meanwhile a client
// on another address is served.
func TestSlowloris(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", abusable)
	addr := strings.TrimPrefix(a.base, "http://")
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	const slow = 8
	var wg sync.WaitGroup
	closedAfter := make([]time.Duration, slow)
	for i := range slow {
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			req := "GET /sse?channel=a HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("y", 1000)
			for j := 0; j < len(req) && time.Since(start) < 5*time.Second; j++ {
				if _, err := conn.Write([]byte{req[j]}); err != nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := io.Copy(io.Discard, conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				closedAfter[i] = -1
				return
			}
			closedAfter[i] = time.Since(start)
		}()
	}
	good := clientFrom(t, "127.0.0.3")
	tok := token(t, grant{sub: "u", channels: []string{"a"}})
	start := time.Now()
	if status, _, _ := call(t, good, "GET", a.base+"/healthz", nil); status != 200 {
		t.Errorf("/healthz from another address: %d", status)
	}
	if status, b := streamFrom(t, good, a.base+"/sse?channel=a&token="+tok); status != 200 {
		t.Errorf("a stream from another address: %d %s", status, b)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the polite client waited %v", d)
	}
	wg.Wait()
	for i, d := range closedAfter {
		if d < 0 || d > 3*time.Second {
			t.Errorf("slow connection %d: closed after %v, want about the 500 ms header timeout", i, d)
		}
	}
}
