//go:build unix

package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/node"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// backend is an application's server answering the node's hooks: it
// admits the session cookie "sid=alice" as alice, forbids "sid=blocked",
// refuses requests without one, and refuses subscriptions to "vip".
type backend struct {
	srv      *httptest.Server
	mu       sync.Mutex
	connects []auth.HookRequest
	subs     []auth.SubscribeRequest
	mode     atomic.Value // "", "fail" (500), "slow" (sleeps)
	slowOnes atomic.Int64 // calls that came while slow
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.mode.Store("")
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	switch b.mode.Load() {
	case "fail":
		http.Error(w, "backend broken", http.StatusInternalServerError)
		return
	case "slow":
		b.slowOnes.Add(1)
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
		return
	}
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path == "/subscribe" {
		var s auth.SubscribeRequest
		json.Unmarshal(body, &s)
		b.mu.Lock()
		b.subs = append(b.subs, s)
		b.mu.Unlock()
		if s.Channel == "vip" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"not a VIP"}`)
		}
		return
	}
	var c auth.HookRequest
	json.Unmarshal(body, &c)
	b.mu.Lock()
	b.connects = append(b.connects, c)
	b.mu.Unlock()
	switch c.Cookies["sid"] {
	case "alice":
		json.NewEncoder(w).Encode(map[string]any{"user": "alice", "channels": []string{"news", "vip", "inbox#alice"},
			"publish": []string{"news"}, "expires": time.Now().Add(time.Hour).Unix()})
	case "blocked":
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"account blocked"}`)
	default:
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"sign in first"}`)
	}
}

func (b *backend) lastConnect() auth.HookRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.connects) == 0 {
		return auth.HookRequest{}
	}
	return b.connects[len(b.connects)-1]
}

func hooked(b *backend, mod ...func(*auth.Hooks)) func(*node.Config) {
	return func(cfg *node.Config) {
		cfg.Auth.Secret = testSecret
		cfg.Auth.Hooks = auth.Hooks{ConnectURL: b.srv.URL + "/connect", ConnectHeaders: []string{"X-Tenant"},
			SubscribeURL: b.srv.URL + "/subscribe", Timeout: 500 * time.Millisecond}
		for _, m := range mod {
			m(&cfg.Auth.Hooks)
		}
	}
}

// get sends a GET with the cookie and header given, and returns the
// status and body, reading at most the first event of a stream.
func hookGet(t *testing.T, u, sid string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if sid != "" {
		req.Header.Set("Cookie", "sid="+sid)
	}
	req.Header.Set("X-Tenant", "acme")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	n, _ := io.ReadAtLeast(resp.Body, buf, 1)
	return resp.StatusCode, string(buf[:n])
}

func wsStatus(t *testing.T, n *testNode, query, sid string) (*websocket.Conn, int) {
	t.Helper()
	h := http.Header{}
	if sid != "" {
		h.Set("Cookie", "sid="+sid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.base, "http")+"/ws"+query, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		if resp == nil {
			t.Fatal(err)
		}
		return nil, resp.StatusCode
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, http.StatusSwitchingProtocols
}

// The connect hook admits, refuses (401) and forbids (403) on every
// transport and for tickets, from the request's cookies, passing on the
// headers named and the client's address; a token still admits on its
// own, without a call.
func TestConnectHook(t *testing.T) {
	c := newCluster(t)
	b := newBackend(t)
	n := c.start("a", hooked(b))
	for _, tr := range []struct{ name, url string }{
		{"sse", n.base + "/sse?channel=news"},
		{"poll", n.base + "/poll?channel=news&wait=0s"},
	} {
		if st, body := hookGet(t, tr.url, "alice"); st != 200 || !strings.Contains(body, "welcome") {
			t.Errorf("%s as alice: %d %s", tr.name, st, body)
		}
		got := b.lastConnect()
		if got.Transport != tr.name || got.Headers["X-Tenant"] != "acme" || got.Address != "127.0.0.1" || len(got.Channels) != 1 {
			t.Errorf("%s: the hook was told %+v", tr.name, got)
		}
		st, body := hookGet(t, tr.url, "")
		checkError(t, tr.name+" without a session", st, []byte(body), 401, protocol.CodeUnauthorized)
		st, body = hookGet(t, tr.url, "blocked")
		checkError(t, tr.name+" blocked", st, []byte(body), 403, protocol.CodeForbidden)
		if !strings.Contains(body, "account blocked") {
			t.Errorf("%s: the backend's reason is not passed on: %s", tr.name, body)
		}
	}
	if _, st := wsStatus(t, n, "?channel=news", "alice"); st != http.StatusSwitchingProtocols {
		t.Errorf("ws as alice: %d", st)
	}
	if b.lastConnect().Transport != "ws" {
		t.Errorf("ws: the hook was told %+v", b.lastConnect())
	}
	if _, st := wsStatus(t, n, "", ""); st != 401 {
		t.Errorf("ws without a session: %d", st)
	}
	if _, st := wsStatus(t, n, "", "blocked"); st != 403 {
		t.Errorf("ws blocked: %d", st)
	}
	// A ticket for alice, from her cookie, opens a stream on its own.
	req, _ := http.NewRequest("POST", n.base+"/api/ticket", nil)
	req.Header.Set("Cookie", "sid=alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tk struct{ Ticket string }
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&tk) != nil {
		t.Fatalf("ticket: %d", resp.StatusCode)
	}
	resp.Body.Close()
	if b.lastConnect().Transport != "ticket" {
		t.Errorf("ticket: the hook was told %+v", b.lastConnect())
	}
	calls := len(b.connects)
	if st, body := hookGet(t, n.base+"/sse?channel=news&ticket="+tk.Ticket, ""); st != 200 || !strings.Contains(body, "welcome") {
		t.Errorf("a ticket from the hook's rights: %d %s", st, body)
	}
	if st, body := hookGet(t, n.base+"/sse?channel=news&token="+token(t, grant{sub: "bob", channels: []string{"news"}}), ""); st != 200 || !strings.Contains(body, "welcome") {
		t.Errorf("a token beside the hook: %d %s", st, body)
	}
	if len(b.connects) != calls {
		t.Errorf("the hook was asked about requests with a credential")
	}
	// The hook's rights bound what alice reads.
	st, body := hookGet(t, n.base+"/sse?channel=other", "alice")
	checkError(t, "a channel the hook did not grant", st, []byte(body), 403, protocol.CodeForbidden)
}

// The subscribe hook decides each subscription to a channel it covers:
// at connect for SSE and long polling, per subscribe frame over a
// WebSocket.
func TestSubscribeHook(t *testing.T) {
	c := newCluster(t)
	b := newBackend(t)
	n := c.start("a", hooked(b, func(h *auth.Hooks) { h.SubscribeChannels = auth.Patterns{"vip", "news"} }))
	st, body := hookGet(t, n.base+"/sse?channel=vip", "alice")
	checkError(t, "sse to vip", st, []byte(body), 403, protocol.CodeForbidden)
	if !strings.Contains(body, "not a VIP") {
		t.Errorf("the backend's reason: %s", body)
	}
	st, body = hookGet(t, n.base+"/poll?channel=vip&wait=0s", "alice")
	checkError(t, "poll to vip", st, []byte(body), 403, protocol.CodeForbidden)
	if st, _ := hookGet(t, n.base+"/sse?channel=news", "alice"); st != 200 {
		t.Errorf("sse to news: %d", st)
	}
	ws, _ := wsStatus(t, n, "", "alice")
	for i, ch := range []string{"vip", "news", "inbox#alice"} {
		b, _ := json.Marshal(map[string]any{"type": "subscribe", "channel": ch, "ref": i})
		ws.Write(context.Background(), websocket.MessageText, b)
	}
	got := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(got) < 3 {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var f protocol.ServerFrame
		json.Unmarshal(data, &f)
		if f.Type == protocol.TypeSubscribed || f.Type == protocol.TypeError {
			got[string(f.Ref)] = f.Type + " " + f.Code
		}
	}
	if got["0"] != "error forbidden" || got["1"] != "subscribed " || got["2"] != "subscribed " {
		t.Fatalf("subscribe answers %v", got)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs {
		if s.Channel == "inbox#alice" || s.User != "alice" {
			t.Fatalf("the hook was asked %+v", s)
		}
	}
}

// A hook that fails or does not answer in time refuses, with 503 and a
// metric, never letting anyone in; 1,000 connects against a slow hook are
// refused in the hook's time without exhausting the node, whose other
// clients and health go on. (pkg/auth tests the bound on calls in flight
// exactly.)
func TestHookFailuresRefuse(t *testing.T) {
	c := newCluster(t)
	b := newBackend(t)
	var logs logBuffer
	n := c.start("a", hooked(b, func(h *auth.Hooks) { h.Timeout, h.MaxConcurrent = 300*time.Millisecond, 8 }),
		func(cfg *node.Config) { cfg.Logger = slogTo(&logs) })
	bystander := openSSE(t, n.base+"/sse?channel=news&token="+token(t, grant{sub: "bob", channels: []string{"news"}}), "")
	bystander.waitWelcome()
	b.mode.Store("fail")
	for _, u := range []string{n.base + "/sse?channel=news", n.base + "/poll?channel=news"} {
		st, body := hookGet(t, u, "alice")
		checkError(t, "a failing hook", st, []byte(body), 503, protocol.CodeUnavailable)
	}
	if _, st := wsStatus(t, n, "", "alice"); st != 503 {
		t.Errorf("ws with a failing hook: %d", st)
	}
	b.mode.Store("slow")
	var wg sync.WaitGroup
	var refused, other atomic.Int64
	start := time.Now()
	for range 1000 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", n.base+"/poll?channel=news&wait=0s", nil)
			req.Header.Set("Cookie", "sid=alice")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				other.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 503 {
				refused.Add(1)
			} else {
				other.Add(1)
			}
		})
	}
	// Meanwhile the node answers its probes and serves its clients.
	if code := oneShotStatus(t, http.DefaultClient, n.base+"/healthz"); code != 200 {
		t.Errorf("/healthz during the storm: %d", code)
	}
	c.xadd("news", "data", "during the storm")
	bystander.waitData(1)
	wg.Wait()
	if refused.Load() < 900 {
		t.Errorf("%d of 1,000 connects against a slow hook refused with 503 (%d otherwise), in %v", refused.Load(), other.Load(), time.Since(start))
	}
	if calls := b.slowOnes.Load(); calls >= 1000 {
		t.Errorf("every one of the 1,000 connects called the slow hook: no bound")
	}
	b.mode.Store("")
	if st, _ := hookGet(t, n.base+"/sse?channel=news", "alice"); st != 200 {
		t.Errorf("after the storm: %d", st)
	}
	resp, err := http.Get(n.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics := string(readAll(t, resp))
	if !strings.Contains(metrics, `pushcluster_hook_calls_total{outcome="failed"}`) || strings.Contains(metrics, `pushcluster_hook_calls_total{outcome="failed"} 0`) {
		t.Errorf("no failed hook calls counted:\n%s", grepLines(metrics, "hook"))
	}
	if lines := strings.Count(logs.String(), "hook failed"); lines < 1 || lines > 20 {
		t.Errorf("%d log lines for ~1,000 failed hook calls, want a few", lines)
	}
}

func grepLines(s, sub string) string {
	var b bytes.Buffer
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			fmt.Fprintln(&b, l)
		}
	}
	return b.String()
}
