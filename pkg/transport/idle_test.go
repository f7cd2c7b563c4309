package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"

	"github.com/pushcluster/pushcluster/internal/front"
	"github.com/pushcluster/pushcluster/internal/testredis"
	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/publish"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// Idle connections wait for their clients in the watcher's epoll set,
// with no goroutine of their own: SSE streams and WebSockets that took
// their subscriptions, answered heartbeats and sent frames hold none,
// yet the server still reads what a client sends, answers it, and
// notices each client leaving. Without a watcher (no epoll), each waits in
// a goroutine, and all of it still holds.
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	for _, watched := range []bool{true, false} {
		t.Run(fmt.Sprintf("watcher=%v", watched), func(t *testing.T) { idleConnections(t, watched) })
	}
}

// noDeliverer: these tests send nothing to one client.
type noDeliverer struct{}

func (noDeliverer) Deliver(context.Context, string, cluster.Direct) (cluster.Delivery, error) {
	return cluster.Delivery{}, errors.New("not in this test")
}

// testServer is a server of the transports on a real Redis and hub,
// running (heartbeats, and a watcher unless watched is false), served by
// an httptest server; all of it ends at cleanup.
func testServer(t testing.TB, watched bool) (*Server, *httptest.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.New(store.Config{Client: testredis.Own(t).Client(t), Prefix: testredis.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	bell, err := store.NewDoorbell(store.DoorbellConfig{Store: st, Node: "idle"})
	if err != nil {
		t.Fatal(err)
	}
	hb, err := hub.New(hub.Config{Store: st, Bell: bell})
	if err != nil {
		t.Fatal(err)
	}
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		hb.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-hubDone })
	a, err := auth.New(auth.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := store.NewPublisher(store.PublisherConfig{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := publish.New(publish.Config{Appender: sp, Cluster: noDeliverer{}})
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry("idle", func() int64 { return 0 })
	srv, err := New(Parts{Registry: reg, Hub: hb, Auth: a, Publisher: pub}, Config{Heartbeat: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv.noWatcher = !watched
	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		srv.Run(runCtx)
	}()
	t.Cleanup(func() { stopRun(); <-ran })
	// As the node serves them: first requests through the front door.
	hs := httptest.NewUnstartedServer(srv.Handler())
	fl := front.Listen(hs.Listener, hs.Config, srv.HijackedPaths()...)
	hs.Listener = fl
	hs.Start()
	t.Cleanup(fl.Wait)
	t.Cleanup(hs.Close)
	return srv, hs
}

func idleConnections(t *testing.T, watched bool) {
	const n = 30
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, hs := testServer(t, watched)
	reg := srv.reg
	var streams []net.Conn
	for i := range n {
		c, err := net.Dial("tcp", hs.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /sse?channel=idle-%d HTTP/1.1\r\nHost: x\r\n\r\n", i%3)
		br := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			if strings.HasPrefix(line, "event: "+protocol.EventWelcome) {
				break
			}
		}
		fmt.Fprintf(c, "junk a stream's client may send, dropped\r\n")
		streams = append(streams, c)
	}
	var sockets []*wsClient
	wsURL := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws?channel=idle-0"
	for i := range n {
		c, _, err := websocket.Dial(ctx, wsURL, nil)
		if err != nil {
			t.Fatalf("WebSocket %d: %v", i, err)
		}
		defer c.CloseNow()
		wc := &wsClient{c: c, frames: make(chan []byte, 16)}
		go wc.read(ctx) // and answers the server's pings
		for _, want := range []string{protocol.TypeWelcome, protocol.TypeSubscribed} {
			wc.await(t, want)
		}
		sockets = append(sockets, wc)
	}
	time.Sleep(time.Second) // several heartbeats: pings answered, SSE comments
	waiting := connGoroutines()
	if watched && waiting > 2 {
		t.Errorf("%d goroutines wait for %d idle connections' clients, want none", waiting, 2*n)
	}
	if !watched && waiting < 2*n {
		t.Errorf("%d goroutines wait for %d idle connections' clients without a watcher, want one each", waiting, 2*n)
	}
	if got := reg.Connections(); got != 2*n {
		t.Fatalf("%d connections after the heartbeats, want %d", got, 2*n)
	}
	// An idle WebSocket still reads what its client sends, and answers.
	for i, c := range sockets {
		f := fmt.Sprintf(`{"type":"subscribe","channel":"more-%d","ref":%d}`, i, i)
		if err := c.c.Write(ctx, websocket.MessageText, []byte(f)); err != nil {
			t.Fatal(err)
		}
		c.await(t, protocol.TypeSubscribed)
	}
	for _, c := range streams {
		c.Close()
	}
	for _, c := range sockets {
		go c.c.Close(websocket.StatusNormalClosure, "bye")
	}
	deadline := time.Now().Add(15 * time.Second)
	for reg.Connections() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := reg.Connections(); got != 0 {
		t.Fatalf("%d connections left after every client went away", got)
	}
}

// wsClient reads a WebSocket's frames as they come, so that it answers
// pings, for await.
type wsClient struct {
	c      *websocket.Conn
	frames chan []byte
}

func (w *wsClient) read(ctx context.Context) {
	defer close(w.frames)
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			return
		}
		w.frames <- b
	}
}

// await reads frames until one of type want, skipping messages.
func (w *wsClient) await(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case b, ok := <-w.frames:
			if !ok {
				t.Fatalf("waiting for %s: the connection ended", want)
			}
			if strings.Contains(string(b), `"type":"`+want+`"`) {
				return
			}
			if strings.Contains(string(b), `"type":"error"`) {
				t.Fatalf("waiting for %s: %s", want, b)
			}
		case <-timeout:
			t.Fatalf("no %s", want)
		}
	}
}

// connGoroutines counts the goroutines that wait for a connection's
// client: an SSE stream's watch, a WebSocket's reader.
func connGoroutines() int {
	buf := make([]byte, 16<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "wire.(*SSE).Watch") || strings.Contains(g, "transport.(*wsConn).read") {
			n++
		}
	}
	return n
}

// BenchmarkWSHandshake is what a WebSocket's handshake, welcome and end
// allocate, client and server both (the client is a raw socket writing a
// prepared request): an upper bound for the garbage a handshake leaves.
func BenchmarkWSHandshake(b *testing.B) {
	_, hs := testServer(b, true)
	addr := hs.Listener.Addr().String()
	req := []byte("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	closeFrame := []byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8} // 1000, masked with zeros
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Write(req)
		got := 0
		for !bytes.Contains(buf[:got], []byte(`"type":"welcome"`)) {
			n, err := c.Read(buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
		c.Write(closeFrame)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		c.Close()
	}
}

// Frames a client sends in the same packet as its handshake are read
// before the connection waits in the watcher, which would never be told
// of them: the subscribe is answered.
func TestFramesSentWithTheHandshake(t *testing.T) {
	_, hs := testServer(t, true)
	c, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	frame, err := ws.CompileFrame(ws.MaskFrame(ws.NewTextFrame([]byte(`{"type":"subscribe","channel":"early","ref":7}`))))
	if err != nil {
		t.Fatal(err)
	}
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := c.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(`"type":"subscribed"`)) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no subscribed frame; got %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Contains(got, []byte(`"ref":7`)) || !bytes.Contains(got, []byte(`"channel":"early"`)) {
		t.Fatalf("the answer does not match the frame: %q", got)
	}
}
