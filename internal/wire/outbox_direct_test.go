package wire

import (
	"strings"
	"sync"
	"testing"
)

// directWire is a testWire whose socket takes at most room bytes per
// direct write; what it takes is recorded in order, like what the blocking
// writer writes.
type directWire struct {
	*testWire
	mu      sync.Mutex
	room    int
	written strings.Builder
}

func (w *directWire) TryWrite(q *Queued) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	frame := q.bytes()
	n := min(w.room, len(frame))
	w.room -= n
	w.written.Write(frame[:n])
	q.advance(n)
	return nil
}

// While the socket takes everything, frames are written directly, with no
// writer goroutine; once it backs up, the rest is queued, in order, behind
// the part it took.
func TestOutboxWritesDirectlyUntilTheSocketBacksUp(t *testing.T) {
	t.Parallel()
	w := &directWire{testWire: newTestWire(), room: 10}
	o := NewOutbox(w, w, 1<<10)
	start := make(chan struct{}) // holds the writer until both offers are queued
	o.Spawn = func(f func()) {
		go func() {
			<-start
			f()
		}()
	}
	if !o.Offer([]byte("abcd")) || !o.Offer([]byte("efgh")) {
		t.Fatal("offer refused")
	}
	if writerRunning(o) {
		t.Fatal("a writer goroutine started while the socket took everything")
	}
	o.Offer([]byte("ijkl")) // the socket takes "ij"
	o.Offer([]byte("mnop")) // queued behind the rest: never written directly
	close(start)
	batch := w.take(t)
	if strings.Join(batch, "|") != "kl|mnop" {
		t.Fatalf("queued batch = %q, want the rest of the frame, then the next", batch)
	}
	w.mu.Lock()
	w.room = 100
	w.mu.Unlock()
	o.Offer([]byte("qrst")) // the writer is busy: queued, not written directly
	w.release(nil)
	if b := w.take(t); strings.Join(b, "|") != "qrst" {
		t.Fatalf("second batch = %q", b)
	}
	w.release(nil)
	waitIdle(t, o)
	if got := w.written.String(); got != "abcdefghij" {
		t.Fatalf("written directly: %q", got)
	}
	o.Offer([]byte("uv")) // idle again: direct
	if got := w.written.String(); got != "abcdefghijuv" {
		t.Fatalf("after draining, written directly: %q", got)
	}
	o.Close(nil)
}
