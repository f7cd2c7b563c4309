//go:build unix

package wire

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
)

// Pongs share the socket with the node's frames, and every frame on it is
// whole: an independent client (gorilla/websocket) pings all through a
// burst of the node's frames, gets every frame in order and a pong per
// ping, read by ReadMessage and queued behind the frames, and the close
// written at the end.
func TestPongsStayWholeOnTheWire(t *testing.T) {
	const frames = 400
	payload := func(i int) []byte { return fmt.Appendf(nil, `{"i":%d,"pad":"%s"}`, i, strings.Repeat("x", i%700)) }
	served := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, _, err := AcceptWS(w, r, nil, false, 10*time.Second)
		if err != nil {
			t.Error(err)
			return
		}
		box := NewOutbox(ws, closeConn{ws}, 64<<20)
		ws.SetOutbox(box)
		var wg sync.WaitGroup
		wg.Go(func() { // reads pings, queues pongs
			br := bufio.NewReader(ws)
			for {
				if _, err := ws.ReadMessage(br, 1<<20, 1<<20, func() {}); err != nil {
					return
				}
			}
		})
		for i := range frames {
			if !box.Offer(WSText(payload(i))) {
				t.Error("offer refused")
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond) // let pings in between
			}
		}
		<-served
		waitIdle(t, box)
		ws.WriteClose(1000, "done")
		ws.Close()
		wg.Wait()
	}))
	defer srv.Close()

	c, _, err := gorilla.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var pongs atomic.Int32
	last := make(chan struct{})
	c.SetPongHandler(func(p string) error {
		pongs.Add(1)
		if p == "last" {
			close(last)
		}
		return nil
	})
	type read struct {
		typ int
		b   []byte
		err error
	}
	reads := make(chan read, frames+1)
	go func() { // the one reader: pongs are handled inside ReadMessage
		for {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			typ, b, err := c.ReadMessage()
			reads <- read{typ, b, err}
			if err != nil {
				return
			}
		}
	}()
	var pings int32
	ping := func(p string) error {
		pings++
		return c.WriteControl(gorilla.PingMessage, []byte(p), time.Now().Add(time.Second))
	}
	for i := range frames {
		if i%4 == 0 {
			if err := ping("ping"); err != nil {
				t.Fatal(err)
			}
		}
		r := <-reads
		if r.err != nil {
			t.Fatalf("frame %d: %v", i, r.err)
		}
		if r.typ != gorilla.TextMessage || !bytes.Equal(r.b, payload(i)) {
			t.Fatalf("frame %d: type %d, %.40q; want text %.40q", i, r.typ, r.b, payload(i))
		}
	}
	if err := ping("last"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-last:
	case r := <-reads:
		t.Fatalf("waiting for the last pong: %d %.40q %v", r.typ, r.b, r.err)
	}
	close(served)
	if r := <-reads; !gorilla.IsCloseError(r.err, gorilla.CloseNormalClosure) {
		t.Fatalf("after the burst: %v, want the close", r.err)
	}
	if got := pongs.Load(); got != pings {
		t.Fatalf("%d pongs for %d pings", got, pings)
	}
}

// closeConn closes the connection when the outbox closes.
type closeConn struct{ w *WS }

func (c closeConn) CloseWire(error) { c.w.Close() }
