//go:build unix

package wire

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"
)

// The node's frames and the library's share one socket, and every frame on
// it is whole, whatever size the library's buffer splits its writes into:
// an independent client (gorilla/websocket) pings all through a burst of
// the node's frames, gets every frame in order and a pong per ping, and
// the close the library sends at the end. With a three-byte buffer, the
// library writes a pong in two pieces, and only gathering them into whole
// frames keeps the node's from landing in between.
func TestLibraryFramesStayWholeOnTheWire(t *testing.T) {
	for _, size := range []int{3, 7, 128} {
		t.Run(fmt.Sprintf("buffer %d", size), func(t *testing.T) { libraryFramesStayWhole(t, size) })
	}
}

func libraryFramesStayWhole(t *testing.T, buffer int) {
	old := wsWriteBuffer
	wsWriteBuffer = buffer
	defer func() { wsWriteBuffer = old }()

	const frames = 400
	payload := func(i int) []byte { return fmt.Appendf(nil, `{"i":%d,"pad":"%s"}`, i, strings.Repeat("x", i%700)) }
	served := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := NewWSRecorder(w, 10*time.Second)
		conn, err := websocket.Accept(rec, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		ws := rec.Wire()
		box := NewOutbox(ws, closeOnce{conn}, 64<<20)
		ws.SetOutbox(box)
		var wg sync.WaitGroup
		wg.Go(func() { conn.Reader(context.Background()) }) // reads pings, writes pongs
		for i := range frames {
			if !box.Offer(WSText(payload(i))) {
				t.Error("offer refused")
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond) // let pings in between
			}
		}
		<-served
		conn.Close(websocket.StatusNormalClosure, "done")
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
		t.Fatalf("after the burst: %v, want the library's close", r.err)
	}
	if got := pongs.Load(); got != pings {
		t.Fatalf("%d pongs for %d pings", got, pings)
	}
}

// closeOnce ends the library's connection when the outbox closes.
type closeOnce struct{ c *websocket.Conn }

func (c closeOnce) CloseWire(error) { c.c.CloseNow() }
