//go:build unix

package tests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/pushcluster/pushcluster/pkg/node"
)

// A node at its connection limit keeps serving the streams it holds,
// refuses new ones with 503 and Retry-After, still answers health checks
// and metrics from its spare connections, refuses even those once the spare
// ones are taken, and lets new connections in as old ones close.
func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", func(cfg *node.Config) { cfg.Transport.MaxConnections, cfg.SpareConnections = 3, 4 })
	oneShot := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(oneShot.CloseIdleConnections)
	s1, s2 := openSSE(t, sseURL(a, "lim"), ""), openSSE(t, sseURL(a, "lim"), "")
	w := dialWS(t, a, "?channel=lim")
	s1.waitWelcome()
	s2.waitWelcome()
	w.waitType("subscribed", 1)

	resp, err := oneShot.Get(sseURL(a, "lim"))
	if err != nil {
		t.Fatal(err)
	}
	checkError(t, "SSE over the limit", resp.StatusCode, readAll(t, resp), 503, "too_many_connections")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("SSE over the limit: no Retry-After")
	}
	ws, resp, err := websocket.Dial(t.Context(), strings.Replace(a.base, "http", "ws", 1)+"/ws", &websocket.DialOptions{HTTPClient: oneShot})
	if err == nil {
		ws.CloseNow()
		t.Fatal("WebSocket over the limit was accepted")
	}
	if resp == nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("WebSocket over the limit: %v, %v", resp, err)
	}
	publish(t, a, map[string]string{"channel": "lim", "data": "held"})
	for _, got := range [][]string{s1.waitData(1), s2.waitData(1), w.waitData(1)} {
		equalStrings(t, "streams held at the limit", got, []string{"held"})
	}
	if code := oneShotStatus(t, oneShot, a.base+"/healthz"); code != 200 {
		t.Errorf("/healthz at the limit: %d", code)
	}
	metricsHave(t, oneShot, a, `pushcluster_connections_refused_total{limit="streams"} 2`)

	// Closing a stream lets a new one in.
	s1.close()
	checkFor(t, defaultWait, func() error {
		if code := oneShotStatus(t, oneShot, a.base+"/readyz"); code != 200 {
			return fmt.Errorf("/readyz %d", code)
		}
		if n := a.Registry().Connections(); n != 2 {
			return fmt.Errorf("%d streams open", n)
		}
		return nil
	})
	openSSE(t, sseURL(a, "lim"), "").waitWelcome()

	// Idle keep-alive connections take the spare ones; one more is
	// answered at once by the listener, before any request is read.
	var idle []net.Conn
	for code := 200; code == 200; {
		if len(idle) > 10 {
			t.Fatal("no connection refused after 10 beyond the limit")
		}
		conn, status := rawGet(t, a, "/healthz")
		idle = append(idle, conn)
		code = status
	}
	if n := len(idle) - 1; n < 1 || n > 4 { // requests just answered may still hold one
		t.Errorf("refused after %d spare connections, want up to 4", n)
	}
	for _, conn := range idle {
		conn.Close()
	}
	// Polling /healthz may itself be refused until the closes are seen.
	refusedBefore := a.RefusedConnections()
	if refusedBefore < 1 {
		t.Errorf("the listener counted %d refusals", refusedBefore)
	}
	checkFor(t, defaultWait, func() error {
		// A refusal may also reach the client as a reset, before or
		// instead of its 503: the listener answers without reading.
		resp, err := oneShot.Get(a.base + "/healthz")
		if err != nil {
			return err
		}
		readAll(t, resp)
		if resp.StatusCode != 200 {
			return fmt.Errorf("/healthz %d", resp.StatusCode)
		}
		return nil
	})
	metricsHave(t, oneShot, a, fmt.Sprintf(`pushcluster_connections_refused_total{limit="connections"} %d`, a.RefusedConnections()))
}

// rawGet sends one keep-alive request on a connection of its own and
// returns the connection, still open unless the node closed it, and the
// status. A 503 must come with Retry-After.
func rawGet(t *testing.T, n *testNode, path string) (net.Conn, int) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(n.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
		t.Errorf("%s: 503 without Retry-After", path)
	}
	return conn, resp.StatusCode
}

func oneShotStatus(t *testing.T, hc *http.Client, u string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	return resp.StatusCode
}

func metricsHave(t *testing.T, hc *http.Client, n *testNode, want string) {
	t.Helper()
	resp, err := hc.Get(n.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if body := string(readAll(t, resp)); resp.StatusCode != 200 || !strings.Contains(body, want) {
		t.Errorf("/metrics (%d) lacks %q", resp.StatusCode, want)
	}
}
