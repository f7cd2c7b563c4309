//go:build unix

package tests

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// Payloads arrive exactly as stored: byte for byte over WebSocket, and over
// SSE as the spec parses them (a line break of any kind arrives as LF, and
// no payload can start a field or an event of its own).
func TestDataArrivesAsStored(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a")
	s := openSSE(t, sseURL(a, "d"), "")
	w := dialWS(t, a, "?channel=d")
	s.waitWelcome()
	w.waitType("subscribed", 1)
	payloads := []string{
		"plain",
		" leading space",
		"two\nlines",
		"cr\ronly",
		"crlf\r\nline",
		"trailing newline\n",
		"\n\nevent: evil\nid: 1-1\ndata: injected\n\n",
		"data: looks like a field",
		": looks like a comment",
		"emoji 🎉 and 中文 and \u2028 separators",
		`{"json": "<script>alert(1)</script>"}`,
		"nul\x00byte",
		"",
	}
	for i, p := range payloads {
		if i%2 == 0 {
			c.xadd("d", "data", p)
		} else {
			publish(t, a, map[string]string{"channel": "d", "data": p})
		}
	}
	sse := strings.NewReplacer("\r\n", "\n", "\r", "\n")
	var wantSSE []string
	for _, p := range payloads {
		wantSSE = append(wantSSE, sse.Replace(p))
	}
	equalStrings(t, "WebSocket", w.waitData(len(payloads)), payloads)
	equalStrings(t, "SSE", s.waitData(len(payloads)), wantSSE)
	if ev := s.named("evil"); len(ev) > 0 {
		t.Errorf("a payload injected an event: %+v", ev)
	}
}

// A raw XADD whose event name holds a line break cannot inject SSE fields:
// the message is delivered under the default event name.
func TestRawEventNameCannotInject(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a")
	s := openSSE(t, sseURL(a, "e"), "")
	s.waitWelcome()
	c.xadd("e", "event", "x\ndata: injected", "data", "payload")
	c.xadd("e", "event", "myEve", "data", "named")
	equalStrings(t, "SSE", s.waitData(2), []string{"payload", "named"})
	if got := s.named("myEve"); len(got) != 1 {
		t.Errorf("myEve events: %+v", got)
	}
}

// A raw XADD naming a control event cannot forge one: on SSE it arrives as
// a plain message, on WebSocket as a message frame without the name, and
// history leaves the name out too.
func TestRawControlEventIsAPlainMessage(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a")
	s := openSSE(t, sseURL(a, "forge"), "")
	s.waitWelcome()
	w := dialWS(t, a, "?channel=forge")
	w.waitType("subscribed", 1)
	for _, ev := range []string{"push.gap", "push.error", "push.welcome", "push.direct"} {
		c.xadd("forge", "event", ev, "data", `{"code":"token_expired"}`)
	}
	equalStrings(t, "SSE", s.waitData(4), slices.Repeat([]string{`{"code":"token_expired"}`}, 4))
	if got := len(s.named("message")); got != 4 {
		t.Errorf("%d of 4 arrived as plain messages", got)
	}
	if e := s.named("push.error"); len(e) != 0 || len(s.named("push.gap")) != 0 || len(s.named("push.welcome")) != 1 {
		t.Errorf("a raw XADD forged control events: %d errors", len(e))
	}
	for _, f := range w.waitType("message", 4) {
		if ev, ok := f["event"]; ok {
			t.Errorf("WebSocket message frame kept the reserved event %v", ev)
		}
	}
	var h struct {
		Entries []struct{ Event, Data string }
	}
	getJSON(t, a.base+"/api/history?channel=forge", &h)
	for _, e := range h.Entries {
		if e.Event != "" {
			t.Errorf("history kept the reserved event %q", e.Event)
		}
	}
}

// socket.io's emits: to everyone, to everyone but the sender, to one client.
func TestEmitToAllOthersAndOne(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("a"), c.start("b")
	sender := dialWS(t, a, "?channel=room")
	peer := dialWS(t, b, "?channel=room")
	s := openSSE(t, sseURL(b, "room"), "")
	var welcome struct{ Client, Node string }
	json.Unmarshal([]byte(s.waitWelcome().Data), &welcome)
	if welcome.Client == "" || welcome.Node != "b" {
		t.Fatalf("SSE welcome: %+v", welcome)
	}
	senderID, _ := sender.waitType("welcome", 1)[0]["client"].(string)
	sender.waitType("subscribed", 1)
	peer.waitType("subscribed", 1)

	sender.send(map[string]any{"type": "publish", "channel": "room", "data": "all", "ref": 1})
	sender.send(map[string]any{"type": "publish", "channel": "room", "data": "others", "exceptSelf": true, "ref": 2})
	sender.send(map[string]any{"type": "publish", "channel": "room", "data": "to sse", "to": welcome.Client, "ref": 3})
	sender.waitType("ack", 3) // published, in order, before what follows
	publish(t, a, map[string]string{"channel": "room", "data": "to sender", "to": senderID})
	publish(t, a, map[string]string{"channel": "room", "data": "end"})

	equalStrings(t, "sender", sender.waitData(3), []string{"all", "to sender", "end"})
	equalStrings(t, "peer", peer.waitData(3), []string{"all", "others", "end"})
	equalStrings(t, "SSE client", s.waitData(4), []string{"all", "others", "to sse", "end"})
}
