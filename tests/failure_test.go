//go:build unix

package tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushcluster/pushcluster/internal/testredis"
	"github.com/pushcluster/pushcluster/pkg/node"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// Killing the doorbell's pub/sub connections mid-stream loses nothing: every
// (re)subscription re-reads its channel from the node's cursor.
func TestPubSubKilledMidStream(t *testing.T) {
	t.Parallel()
	srv := testredis.Own(t)
	c := newClusterOn(t, srv)
	a := c.start("a")
	s := openSSE(t, sseURL(a, "k"), "")
	w := dialWS(t, a, "?channel=k")
	s.waitWelcome()
	w.waitType("subscribed", 1)
	waitNotified(t, a)

	var want []string
	ctx := context.Background()
	for i := range 600 {
		want = append(want, c.xaddSeq("k", i))
		if i%100 != 50 {
			continue
		}
		killed, err := c.rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
		if err != nil || killed == 0 {
			t.Fatalf("CLIENT KILL TYPE pubsub: killed %d: %v", killed, err)
		}
		checkFor(t, 10*time.Second, func() error { // the node reconnects
			if list := c.rdb.ClientList(ctx).Val(); !strings.Contains(list, "cmd=subscribe") && !strings.Contains(list, "sub=1") {
				return errors.New("no pub/sub connection yet")
			}
			return nil
		})
	}
	equalStrings(t, "SSE", s.waitData(len(want)), want)
	equalStrings(t, "WebSocket", w.waitData(len(want)), want)
	waitNotified(t, a)
}

// Redis goes away and comes back (with its data, without its runtime
// settings): connections stay open, /readyz fails meanwhile, and what is
// published once it is back is delivered, with keyspace notifications
// re-enabled by the node's probe.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	srv := testredis.Own(t, testredis.Persistent)
	c := newClusterOn(t, srv)
	a := c.start("a")
	s := openSSE(t, sseURL(a, "r"), "")
	w := dialWS(t, a, "?channel=r")
	s.waitWelcome()
	w.waitType("subscribed", 1)
	want := []string{c.xaddSeq("r", 0)}
	s.waitData(1)

	srv.Stop()
	checkFor(t, 10*time.Second, func() error {
		if code := getJSON(t, a.base+"/readyz", nil); code != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz answered %d while Redis is down", code)
		}
		return nil
	})
	if status, body := postJSON(t, a.base+"/api/publish", map[string]string{"channel": "r", "data": "x"}); status != http.StatusServiceUnavailable || !strings.Contains(string(body), "unavailable") {
		t.Errorf("publish while Redis is down: %d %s", status, body)
	}
	late := openSSE(t, sseURL(a, "r"), s.lastEventID()) // connects while Redis is down

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 20; i++ {
		want = append(want, c.xaddSeq("r", i))
	}
	equalStrings(t, "SSE across the restart", s.waitData(len(want)), want)
	equalStrings(t, "WebSocket across the restart", w.waitData(len(want)), want)
	equalStrings(t, "SSE connected while Redis was down", late.waitData(len(want)-1), want[1:])
	for _, st := range []*sseStream{s, late} {
		if g := st.named("push.gap"); len(g) > 0 {
			t.Errorf("unexpected gap: %+v", g)
		}
	}
	checkFor(t, 15*time.Second, func() error {
		var r struct {
			Ready    bool
			Delivery string
		}
		getJSON(t, a.base+"/readyz", &r)
		if !r.Ready || r.Delivery != "notify" {
			return fmt.Errorf("/readyz: %+v", r)
		}
		return nil
	})
}

// A client that stops reading is cut off once its queue fills, without
// slowing anyone else; with its last ID it gets everything it missed.
func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", func(cfg *node.Config) {
		cfg.Transport.QueueBytes = 1 << 20
	})
	fast := openSSE(t, sseURL(a, "slow"), "")
	fast.waitWelcome()
	slow := dialStalled(t, a, "/sse?channel=slow")
	slowWS := dialWSWith(t, a, "?channel=slow", smallReceiveBuffer)
	slowWS.waitType("subscribed", 1)
	stallWS(slowWS)

	payload := strings.Repeat("x", 16<<10)
	var want []string
	for i := 0; a.Hub().Stats().Kicked < 2; i++ {
		if i == 4000 {
			t.Fatal("the stalled clients were never cut off")
		}
		msg := fmt.Sprintf("slow/%d/%s", i, payload)
		c.xadd("slow", "data", msg)
		want = append(want, msg)
		fast.waitCount(len(want)) // pace the publisher to the healthy client
	}
	wsErr := slowWS.waitClosed()
	for i := range 10 {
		want = append(want, c.xaddSeq("slow", 100000+i))
	}
	equalStrings(t, "fast client", fast.waitData(len(want)), want)

	got, last := slow.drain(t)
	if len(got) >= len(want) {
		t.Fatalf("slow client got all %d messages; it was not cut off", len(got))
	}
	resumed := openSSE(t, sseURL(a, "slow"), last)
	equalStrings(t, "slow client after resuming", append(got, resumed.waitData(len(want)-len(got))...), want)

	if code := websocket.CloseStatus(wsErr); code != protocol.CloseSlowConsumer {
		t.Errorf("stalled WebSocket closed with %v, want status %d", wsErr, protocol.CloseSlowConsumer)
	}
}

// stalledConn is a raw SSE request whose response is not read until drain.
type stalledConn struct {
	conn net.Conn
}

func dialStalled(t *testing.T, n *testNode, path string) *stalledConn {
	t.Helper()
	d := net.Dialer{Control: smallReceiveBuffer}
	conn, err := d.Dial("tcp", strings.TrimPrefix(n.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n", path)
	return &stalledConn{conn: conn}
}

// drain reads what the server sent before it closed the connection and
// returns the messages and the last event ID.
func (s *stalledConn) drain(t *testing.T) ([]string, string) {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(s.conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := protocol.NewSSEParser(resp.Body)
	var got []string
	for {
		ev, err := p.Next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("slow connection was not closed by the server")
			}
			return got, p.LastEventID()
		}
		if !strings.HasPrefix(ev.Event, "push.") {
			got = append(got, ev.Data)
		}
	}
}

// stallWS stops the client reading: its frames pile up on the server.
func stallWS(w *wsClient) {
	w.stall.Lock()
}

func (c *wsClient) waitClosed() error {
	c.stall.Unlock()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.t.Fatal("WebSocket not closed")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func waitNotified(t *testing.T, n *testNode) {
	t.Helper()
	checkFor(t, 10*time.Second, func() error {
		if !n.Hub().Notified() {
			return errors.New("doorbell not proven")
		}
		return nil
	})
}

// smallReceiveBuffer shrinks a client socket's receive buffer, so a client
// that stops reading backs up into the server quickly.
func smallReceiveBuffer(_, _ string, rc syscall.RawConn) error {
	var err error
	rc.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	})
	return err
}

// A node that may not run CONFIG (a managed Redis) cannot enable keyspace
// notifications itself; once an operator does, the probe proves them, and
// what was published before that is read then, not at the next publish.
func TestNotificationsEnabledByOperator(t *testing.T) {
	t.Parallel()
	srv := testredis.Own(t)
	admin := srv.Client(t)
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "node", "on", ">pw", "~*", "&*", "+@all", "-config").Err(); err != nil {
		t.Fatal(err)
	}
	c := newClusterOn(t, srv)
	c.redisURL = "redis://node:pw@" + srv.Addr + "/0"
	a := c.start("a", func(cfg *node.Config) { cfg.PollInterval = time.Hour }) // no polling to fall back on
	s := openSSE(t, sseURL(a, "managed"), "")
	s.waitWelcome()
	checkFor(t, defaultWait, func() error { // the channel's subscription is confirmed and checked
		if a.Hub().Stats().Checked == 0 {
			return errors.New("channel not yet watched")
		}
		return nil
	})
	want := []string{c.xaddSeq("managed", 0)}
	if a.Hub().Notified() {
		t.Fatal("notifications proven although the node could not enable them")
	}
	if err := admin.ConfigSet(ctx, "notify-keyspace-events", "Kt").Err(); err != nil {
		t.Fatal(err)
	}
	waitNotified(t, a)
	equalStrings(t, "SSE", s.waitData(1), want)
}
