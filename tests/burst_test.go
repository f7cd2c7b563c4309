//go:build unix

package tests

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/pkg/node"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// Bursts are queued as frames shared by every stream they go to. Streams
// of every framing (one channel, several channels, WebSocket) that keep up
// must each get every entry exactly as published: a shared frame changed by
// one connection's partial write would show in another's data, and -race
// would see the write. Streams that stop reading are cut off in the middle
// of a burst and must resume with nothing lost or repeated.
func TestBurstSharedAndCutOff(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", func(cfg *node.Config) {
		cfg.Transport.QueueBytes = 256 << 10
	})
	one := openSSE(t, sseURL(a, "burst"), "")
	multi := openSSE(t, sseURL(a, "burst", "burst-side"), "")
	ws := dialWS(t, a, "?channel=burst")
	stalled := dialStalled(t, a, "/sse?channel=burst")
	stalledMulti := dialStalled(t, a, "/sse?channel=burst&channel=burst-side")
	stalledWS := dialWSWith(t, a, "?channel=burst", smallReceiveBuffer)
	ws.waitType("subscribed", 1)
	stalledWS.waitType("subscribed", 1)
	stallWS(stalledWS)
	checkFor(t, defaultWait, func() error {
		if n := a.Hub().Subscriptions(); n != 8 {
			return fmt.Errorf("%d subscriptions live, want 8", n)
		}
		return nil
	})

	// Each burst is smaller than a queue, and the next waits until the
	// streams that keep up have it all, so that only the stalled ones fall
	// a queue behind.
	var want []string
	for round := 0; a.Hub().Stats().Kicked < 3; round++ {
		if round == 200 {
			t.Fatalf("the stalled streams were never cut off (%d kicked)", a.Hub().Stats().Kicked)
		}
		want = append(want, xaddBurst(t, c, "burst", round, 50, 4<<10)...)
		one.waitCount(len(want))
		multi.waitCount(len(want))
		ws.waitType("message", len(want))
	}
	wsErr := stalledWS.waitClosed() // reads again, so the close handshake finishes
	for i := range 10 {
		want = append(want, c.xaddSeq("burst", i))
	}

	equalStrings(t, "one-channel stream", one.waitData(len(want)), want)
	equalStrings(t, "two-channel stream", multi.waitData(len(want)), want)
	equalStrings(t, "WebSocket", ws.waitData(len(want)), want)

	for _, s := range []struct {
		what     string
		conn     *stalledConn
		channels []string
	}{
		{"stalled one-channel stream", stalled, []string{"burst"}},
		{"stalled two-channel stream", stalledMulti, []string{"burst", "burst-side"}},
	} {
		got, last := s.conn.drain(t)
		if len(got) >= len(want) {
			t.Fatalf("%s got all %d messages; it was not cut off", s.what, len(got))
		}
		resumed := openSSE(t, sseURL(a, s.channels...), last)
		equalStrings(t, s.what+" after resuming", append(got, resumed.waitData(len(want)-len(got))...), want)
		resumed.close()
	}

	if code := websocket.CloseStatus(wsErr); code != protocol.CloseSlowConsumer {
		t.Errorf("stalled WebSocket closed with %v, want status %d", wsErr, protocol.CloseSlowConsumer)
	}
	got := stalledWS.data()
	if len(got) >= len(want) {
		t.Fatalf("stalled WebSocket got all %d messages; it was not cut off", len(got))
	}
	since := stalledWS.lastID()
	if since == "" { // cut off before its first message
		since, _ = stalledWS.ofType("subscribed")[0]["position"].(string)
	}
	again := dialWS(t, a, "")
	again.send(map[string]any{"type": "subscribe", "channel": "burst", "since": since})
	equalStrings(t, "stalled WebSocket after resubscribing", append(got, again.waitData(len(want)-len(got))...), want)
}

// xaddBurst publishes n entries of about size bytes to channel in one
// pipeline, as a burst arrives, and returns their data. Each entry's data
// is its own (with line breaks, which SSE splits into lines), so an entry
// written with another's bytes cannot pass for it.
func xaddBurst(t *testing.T, c *cluster, channel string, round, n, size int) []string {
	t.Helper()
	out := make([]string, n)
	pipe := c.rdb.Pipeline()
	for i := range out {
		head := fmt.Sprintf("%s/%d.%d/", channel, round, i)
		body := strings.Repeat(fmt.Sprintf("%x", round*n+i), size/8)
		out[i] = head + body[:len(body)/2] + "\n" + body[len(body)/2:]
		pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: c.prefix + channel, Values: []any{"data", out[i]}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	return out
}

// A WebSocket peer reading its way through a burst answers a ping only
// once it reaches it, behind the frames sent first: that may be many
// heartbeats later, after the node has long written everything, and the
// peer must not be taken for dead meanwhile.
func TestSlowReaderOutlivesHeartbeats(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", func(cfg *node.Config) { cfg.Transport.Heartbeat = 50 * time.Millisecond })
	// A receive buffer that holds the whole burst: the node writes it all at
	// once and then has nothing to write while the ping waits behind it.
	_, read := dialSubscribed(t, a, "slowread", func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<20)
		})
	})
	want := xaddBurst(t, c, "slowread", 0, 300, 4<<10) // 1.2 MB, about 3 s at this reader's pace
	var got []string
	for len(got) < len(want) {
		if f := read(); f["type"] == "message" {
			got = append(got, f["data"].(string))
			time.Sleep(10 * time.Millisecond)
		}
	}
	equalStrings(t, "slow reader", got, want)
}

// The node writes its own data frames and the WebSocket library its pongs,
// on one socket. A peer that reads slowly through a burst of large frames,
// pinging all the while, has each pong put between two whole frames, never
// inside one written in part: it gets every pong and every entry intact.
func TestPongsBetweenPartWrittenFrames(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", func(cfg *node.Config) { cfg.Transport.QueueBytes = 16 << 20 })
	conn, read := dialSubscribed(t, a, "pongs", smallReceiveBuffer)
	want := xaddBurst(t, c, "pongs", 0, 40, 64<<10) // 2.6 MB through a 4 KiB receive buffer

	pongs := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				if n == 0 {
					pongs <- fmt.Errorf("no ping was answered")
				}
				close(pongs)
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), defaultWait)
			err := conn.Ping(ctx) // answered once the reader below reaches the pong
			cancel()
			if err != nil {
				pongs <- err
				close(pongs)
				return
			}
			n++
		}
	}()
	var got []string
	for len(got) < len(want) {
		if f := read(); f["type"] == "message" {
			got = append(got, f["data"].(string))
			time.Sleep(5 * time.Millisecond)
		}
	}
	close(stop)
	equalStrings(t, "slow pinging reader", got, want)
	// The last ping may wait for a pong behind nothing: read on for it.
	go func() {
		for {
			if _, _, err := conn.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	for err := range pongs {
		t.Error(err)
	}
}

// dialSubscribed opens a WebSocket to channel on n through a socket set up
// by control, and reads up to its subscription. read returns the next
// frame, failing the test on an error.
func dialSubscribed(t *testing.T, n *testNode, channel string, control func(string, string, syscall.RawConn) error) (*websocket.Conn, func() map[string]any) {
	t.Helper()
	conn := dialWSConn(t, n, "?channel="+channel, control)
	t.Cleanup(func() { conn.CloseNow() })
	start := time.Now()
	read := func() map[string]any {
		ctx, cancel := context.WithTimeout(context.Background(), defaultWait)
		defer cancel()
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", time.Since(start), err)
		}
		var f map[string]any
		jsonOf(t, string(b), &f)
		return f
	}
	for f := read(); f["type"] != "subscribed"; f = read() {
	}
	return conn, read
}
