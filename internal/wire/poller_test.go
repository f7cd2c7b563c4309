//go:build linux

package wire

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Backed-up sockets are written by the poller, with no writer goroutine:
// a shared run offered to sockets that take a few KiB at a time reaches
// each whole and in order, and a drain closes each once its queue is out.
func TestPollerWritesBackedUpSockets(t *testing.T) {
	p, err := NewPoller(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	frames := make([][]byte, 200)
	for i := range frames {
		frames[i] = fmt.Appendf(nil, "<%d:%s>", i, bytes.Repeat([]byte{byte('a' + i%26)}, 1000+i*37))
	}
	const sockets = 4
	var wg sync.WaitGroup
	got := make([][]byte, sockets)
	for i := range sockets {
		server, client := tcpPair(t)
		w := wireOf(t, server)
		o := NewOutbox(w, sseCloser{w}, 64<<20)
		o.Spawn = func(func()) { t.Error("a writer goroutine was started") }
		o.UsePoller(p, w.Raw())
		wg.Go(func() { got[i] = slowRead(t, client, uint64(i)) })
		for range 3 {
			if !o.OfferWith(func() Queued { return Shared(frames) }) {
				t.Fatal("offer refused")
			}
		}
		o.CloseAfterFlush(errEnd)
	}
	wg.Wait()
	want := bytes.Repeat(bytes.Join(frames, nil), 3)
	for i, b := range got {
		if !bytes.Equal(b, want) {
			t.Errorf("socket %d got %d bytes, want %d; first difference at %d", i, len(b), len(want), firstDiff(b, want))
		}
	}
}

// A socket that takes nothing for the write timeout is closed by the
// poller's sweep.
func TestPollerClosesStalledSockets(t *testing.T) {
	p, err := NewPoller(300 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	server, _ := tcpPair(t) // the client never reads
	closed := make(chan error, 1)
	w := wireOf(t, server)
	o := NewOutbox(w, &closeRecorder{w: w, closed: closed}, 64<<20)
	o.Spawn = func(func()) { t.Error("a writer goroutine was started") }
	o.UsePoller(p, w.Raw())
	big := bytes.Repeat([]byte("x"), 8<<20)
	if !o.Offer(big) {
		t.Fatal("offer refused")
	}
	select {
	case err := <-closed:
		if !errors.Is(err, ErrWriteStalled) {
			t.Fatalf("closed with %v, want ErrWriteStalled", err)
		}
	case <-time.After(30 * time.Second): // a deadlock detector only
		t.Fatal("a stalled socket was never closed")
	}
}

type closeRecorder struct {
	w      *SSE
	closed chan error
}

func (c *closeRecorder) CloseWire(reason error) {
	c.w.Close(false)
	c.closed <- reason
}
