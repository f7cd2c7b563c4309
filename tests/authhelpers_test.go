//go:build unix

package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/pushcluster/pushcluster/internal/logbuf"
	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/node"
)

var (
	testSecret = []byte("test-secret-test-secret-test-secret!")
	testAPIKey = "test-api-key-0123456789"
)

// secured configures a node with an HS256 secret and one API key.
func secured(cfg *node.Config) {
	cfg.Auth.Secret = testSecret
	cfg.Auth.APIKeys = []string{testAPIKey}
}

// grant is what a test token allows.
type grant struct {
	sub               string
	channels, publish []string
	ttl               time.Duration // default a minute
}

func token(t testing.TB, g grant) string {
	t.Helper()
	if g.ttl == 0 {
		g.ttl = time.Minute
	}
	c := auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: g.sub, ExpiresAt: jwt.NewNumericDate(time.Now().Add(g.ttl))},
		Channels:         g.channels, Publish: g.publish,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// call sends a request with headers ("Authorization", "Bearer x", …) and
// returns the status, body and response header.
func call(t testing.TB, hc *http.Client, method, u string, body any, headers ...string) (int, []byte, http.Header) {
	t.Helper()
	var r io.Reader
	if body != nil {
		raw, ok := body.([]byte)
		if !ok {
			raw, _ = json.Marshal(body)
		}
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, u, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, nil, resp.Header // a stream: do not wait for its end
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func bearer(cred string) []string { return []string{"Authorization", "Bearer " + cred} }

// clientFrom returns an HTTP client whose connections come from ip, a
// loopback address such as 127.0.0.2.
func clientFrom(t testing.TB, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

// dialWSOpts dials /ws with options and returns the client, or the
// handshake's status when it is refused.
func dialWSOpts(t testing.TB, n *testNode, query string, opts *websocket.DialOptions) (*wsClient, int) {
	t.Helper()
	u := strings.Replace(n.base, "http://", "ws://", 1) + "/ws" + query
	conn, resp, err := websocket.Dial(context.Background(), u, opts)
	if err != nil {
		if resp == nil {
			t.Fatal(err)
		}
		return nil, resp.StatusCode
	}
	conn.SetReadLimit(1 << 22)
	c := &wsClient{t: t, conn: conn, done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.close)
	return c, http.StatusSwitchingProtocols
}

// closeStatus waits for the connection to end and returns its close code.
func (c *wsClient) closeStatus() websocket.StatusCode {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(defaultWait):
		c.t.Fatal("the WebSocket is still open")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return websocket.CloseStatus(c.err)
}

// logBuffer collects a node's log lines.
type logBuffer = logbuf.Buffer

// slogTo returns a debug-level logger writing to w.
func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
