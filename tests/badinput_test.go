//go:build unix

package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// Bad HTTP input gets a 4xx with a JSON error body naming the problem.
func TestBadHTTPInput(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a")
	long := strings.Repeat("c", 201)
	cases := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"empty channel", map[string]string{"channel": "", "data": "x"}, 400, "invalid_channel"},
		{"long channel", map[string]string{"channel": long, "data": "x"}, 400, "invalid_channel"},
		{"space in channel", map[string]string{"channel": "a b", "data": "x"}, 400, "invalid_channel"},
		{"control in channel", map[string]string{"channel": "a\x01", "data": "x"}, 400, "invalid_channel"},
		{"CRLF in event", map[string]string{"channel": "a", "event": "e\r\nid: 1", "data": "x"}, 400, "invalid_event"},
		{"oversize data", map[string]string{"channel": "a", "data": strings.Repeat("x", 64<<10+1)}, 413, "too_large"},
		{"oversize body", []byte(`{"channel":"a","data":"` + strings.Repeat("x", 200<<10) + `"}`), 413, "too_large"},
		{"malformed JSON", []byte(`{"channel":`), 400, "bad_json"},
		{"not an object", []byte(`[1,2]`), 400, "bad_json"},
		{"client id too long", map[string]string{"channel": "a", "data": "x", "to": long}, 400, "invalid_client"},
		{"data not UTF-8", []byte("{\"channel\":\"ct\",\"data\":\"\xff\"}"), 400, "bad_json"},
		{"channel not UTF-8", []byte("{\"channel\":\"ct\xc3\",\"data\":\"x\"}"), 400, "bad_json"},
		{"lone surrogate escaped", []byte(`{"channel":"ct","data":"\ud83c"}`), 400, "bad_json"},
		{"control event welcome", map[string]string{"channel": "ct", "event": "push.welcome", "data": "{}"}, 400, "invalid_event"},
		{"control event gap", map[string]string{"channel": "ct", "event": "push.gap", "data": "{}"}, 400, "invalid_event"},
		{"control event error", map[string]string{"channel": "ct", "event": "push.error", "data": `{"code":"token_expired"}`}, 400, "invalid_event"},
		{"control event to one client", map[string]string{"client": "someone", "event": "push.error", "data": "x"}, 400, "invalid_event"},
		{"empty client", map[string]string{"client": "", "data": "x"}, 400, "invalid_client"},
		{"to one client without data", map[string]string{"client": "someone"}, 400, "invalid_data"},
		{"to one client with empty data", map[string]string{"client": "someone", "data": ""}, 400, "invalid_data"},
		{"to and exclude the same client", map[string]string{"channel": "ct", "data": "x", "to": "same", "exclude": "same"}, 400, "invalid_client"},
	}
	for _, tc := range cases {
		status, body := postJSON(t, a.base+"/api/publish", tc.body)
		checkError(t, tc.name, status, body, tc.status, tc.code)
	}
	// Only JSON: a text/plain or form POST from another origin needs no
	// CORS preflight.
	good := `{"channel":"ct","data":"x"}`
	for _, ct := range []string{"", "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "application/json; charset=iso-8859-1"} {
		status, body := post(t, a.base+"/api/publish", ct, good)
		checkError(t, "Content-Type "+ct, status, body, 415, "unsupported_media_type")
	}
	if n := c.rdb.XLen(t.Context(), c.prefix+"ct").Val(); n != 0 {
		t.Errorf("%d rejected publishes reached Redis", n)
	}
	for _, ct := range []string{"application/json", "application/json; charset=UTF-8"} {
		if status, body := post(t, a.base+"/api/publish", ct, good); status != 200 {
			t.Errorf("Content-Type %s: %d %s", ct, status, body)
		}
	}
	gets := []struct {
		name, path string
		code       string
	}{
		{"SSE without channel", "/sse", "invalid_channel"},
		{"SSE bad channel", "/sse?channel=" + url.QueryEscape("a b"), "invalid_channel"},
		{"SSE too many channels", "/sse?" + manyChannels(65), "invalid_channel"},
		{"WebSocket bad channel", "/ws?channel=" + url.QueryEscape("a\nb"), "invalid_channel"},
		{"history bad since", "/api/history?channel=a&since=abc", "invalid_id"},
		{"history bad limit", "/api/history?channel=a&limit=0", "invalid_limit"},
		{"history bad channel", "/api/history?channel=", "invalid_channel"},
		{"SSE with too many query parameters", "/sse?channel=a&" + strings.Repeat("x=1&", 10_001), "invalid_query"},
		{"WebSocket with too many query parameters", "/ws?channel=a&" + strings.Repeat("x=1&", 10_001), "invalid_query"},
		{"history with too many query parameters", "/api/history?channel=a&" + strings.Repeat("x=1&", 10_001), "invalid_query"},
		{"SSE with a semicolon in the query", "/sse?channel=a;b", "invalid_query"},
	}
	for _, g := range gets {
		resp, err := http.Get(a.base + g.path)
		if err != nil {
			t.Fatal(err)
		}
		raw := readAll(t, resp)
		checkError(t, g.name, resp.StatusCode, raw, 400, g.code)
	}
	// The node is unaffected.
	s := openSSE(t, sseURL(a, "ok"), "")
	s.waitWelcome()
	publish(t, a, map[string]string{"channel": "ok", "data": "still fine"})
	equalStrings(t, "after bad input", s.waitData(1), []string{"still fine"})
}

// post sends body with the given Content-Type ("" for none).
func post(t *testing.T, u, contentType, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readAll(t, resp)
}

func manyChannels(n int) string {
	q := url.Values{}
	for i := range n {
		q.Add("channel", "c"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	return q.Encode()
}

func checkError(t *testing.T, name string, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Errorf("%s: body is not JSON: %q", name, body)
		return
	}
	if status != wantStatus || e.Error.Code != wantCode || e.Error.Message == "" {
		t.Errorf("%s: got %d %+v, want %d %s", name, status, e.Error, wantStatus, wantCode)
	}
}

// A bad or stale Last-Event-ID is answered 200 with push.gap, then live
// delivery; browsers close an EventSource for good on any other status.
func TestSSEResumeGaps(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a")
	old := c.xadd("g", "data", "old")
	for i := range 5 {
		c.xaddSeq("g", i)
	}
	c.rdb.XTrimMaxLen(t.Context(), c.prefix+"g", 3)

	cases := []struct {
		name, lastID, reason string
		replayed             []string
	}{
		{"malformed", "not-an-id", "malformed", nil},
		{"wrong shape", "x:1-0,2-0", "malformed", nil},
		{"trimmed", old, "trimmed", []string{"g/2", "g/3", "g/4"}},
		{"beyond the stream", "99999999999999-0", "reset", nil},
	}
	for _, tc := range cases {
		s := openSSE(t, sseURL(a, "g"), tc.lastID)
		s.waitWelcome()
		gaps := s.waitNamed("push.gap", 1)
		var g struct {
			Channels []string
			Reason   string
		}
		if err := json.Unmarshal([]byte(gaps[0].Data), &g); err != nil || g.Reason != tc.reason || len(g.Channels) != 1 || g.Channels[0] != "g" {
			t.Errorf("%s: push.gap %q, want reason %q on [g]", tc.name, gaps[0].Data, tc.reason)
		}
		if len(tc.replayed) > 0 {
			equalStrings(t, tc.name+" replay", s.waitData(len(tc.replayed)), tc.replayed)
		}
		s.close()
	}
	// Multi-channel cursors for another channel set are not applied.
	s := openSSE(t, sseURL(a, "g", "h"), "00000000:1-0,1-0")
	if gaps := s.waitNamed("push.gap", 1); !strings.Contains(gaps[0].Data, `"mismatch"`) {
		t.Errorf("foreign cursor: %q", gaps[0].Data)
	}
	live := c.xaddSeq("g", 9)
	equalStrings(t, "live after a gap", s.waitData(1), []string{live})
}

// Rejected WebSocket frames get an error frame with a code (and the ref),
// and the connection stays usable.
func TestBadWebSocketFrames(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a")
	w := dialWS(t, a, "")
	w.waitType("welcome", 1)
	frames := []struct {
		raw  string
		code string
	}{
		{`{"type":`, "bad_json"},
		{`{"type":"dance","ref":"r1"}`, "unknown_type"},
		{`{"ref":"r2"}`, "unknown_type"},
		{`{"type":"subscribe","ref":"r3"}`, "invalid_channel"},
		{`{"type":"subscribe","channel":"a b","ref":"r4"}`, "invalid_channel"},
		{`{"type":"subscribe","channel":"ok","since":"bogus","ref":"r5"}`, "invalid_id"},
		{`{"type":"publish","channel":"ok","event":"a\nb","data":"x","ref":"r6"}`, "invalid_event"},
		{`{"type":"unsubscribe","channel":"never","ref":"r7"}`, "not_subscribed"},
		{`{"type":"publish","channel":"ok","data":"` + strings.Repeat("x", 64<<10+1) + `","ref":"r8"}`, "too_large"},
		{`{"type":"ping","data":"` + strings.Repeat("x", 200<<10) + `"}`, "too_large"},
		{"{\"type\":\"publish\",\"channel\":\"ok\",\"data\":\"\xff\",\"ref\":\"r9\"}", "bad_json"},
		{`{"type":"publish","channel":"ok","data":"\udc00","ref":"r10"}`, "bad_json"},
		{`{"type":"publish","channel":"ok","event":"push.gap","data":"{}","ref":"r11"}`, "invalid_event"},
		{`{"type":"publish","client":"","data":"x","ref":"r12"}`, "invalid_client"},
		{`{"type":"publish","client":"someone","ref":"r13"}`, "invalid_data"},
		{`{"type":"publish","client":"someone","event":"push.welcome","data":"x","ref":"r14"}`, "invalid_event"},
	}
	for _, f := range frames {
		if err := w.conn.Write(t.Context(), websocket.MessageText, []byte(f.raw)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.conn.Write(t.Context(), websocket.MessageBinary, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	errs := w.waitType("error", len(frames)+1)
	for i, f := range frames {
		if errs[i]["code"] != f.code || errs[i]["message"] == "" {
			t.Errorf("frame %.40q: got %v, want code %s", f.raw, errs[i], f.code)
		}
	}
	if errs[1]["ref"] != "r1" {
		t.Errorf("error frame does not echo the ref: %v", errs[1])
	}
	if errs[len(frames)]["code"] != "binary_unsupported" {
		t.Errorf("binary frame: %v", errs[len(frames)])
	}
	w.send(map[string]any{"type": "ping", "ref": 42})
	if p := w.waitType("pong", 1); p[0]["ref"] != float64(42) {
		t.Errorf("pong: %v", p[0])
	}
	w.send(map[string]any{"type": "subscribe", "channel": "ok", "ref": "s"})
	w.waitType("subscribed", 1)
	w.send(map[string]any{"type": "subscribe", "channel": "ok", "ref": "s2"})
	checkFor(t, defaultWait, func() error { return w.hasError("already_subscribed") })
	w.send(map[string]any{"type": "publish", "channel": "ok", "data": "works", "ref": "p"})
	if acks := w.waitType("ack", 1); acks[0]["ref"] != "p" || acks[0]["id"] == "" {
		t.Errorf("ack: %v", acks[0])
	}
	equalStrings(t, "after bad frames", w.waitData(1), []string{"works"})

	// A position at connect belongs to one channel.
	multi := dialWS(t, a, "?channel=x&channel=y&since=1-0")
	checkFor(t, defaultWait, func() error { return multi.hasError("invalid_id") })
	if subs := multi.ofType("subscribed"); len(subs) != 0 {
		t.Errorf("subscribed despite an ambiguous since: %v", subs)
	}
}

// A channel whose key holds something other than a stream is refused with
// a clear error, and does not hold up delivery on other channels.
func TestChannelKeyOfWrongType(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a")
	if err := c.rdb.Set(t.Context(), c.prefix+"hash", "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	status, body := postJSON(t, a.base+"/api/publish", map[string]string{"channel": "hash", "data": "x"})
	checkError(t, "publish", status, body, 409, "channel_unreadable")

	w := dialWS(t, a, "")
	w.send(map[string]any{"type": "subscribe", "channel": "hash", "ref": 1})
	checkFor(t, defaultWait, func() error { return w.hasError("channel_unreadable") })

	s := openSSE(t, sseURL(a, "hash"), "")
	if e := s.waitNamed("push.error", 1); !strings.Contains(e[0].Data, "channel_unreadable") {
		t.Errorf("push.error: %q", e[0].Data)
	}
	<-s.done // the stream ends

	ok := openSSE(t, sseURL(a, "fine"), "")
	ok.waitWelcome()
	c.xadd("fine", "data", "delivered")
	equalStrings(t, "other channel", ok.waitData(1), []string{"delivered"})
}
