package wire

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// testWire is a frameWriter the test drives: each writeFrames hands its
// batch to the test on batches and returns what the test sends on results,
// so the writer stays blocked for as long as the test wants.
type testWire struct {
	batches chan [][]byte
	results chan error
	closes  chan error // every closeWire reason
}

func newTestWire() *testWire {
	return &testWire{
		batches: make(chan [][]byte),
		results: make(chan error),
		closes:  make(chan error, 16),
	}
}

func (w *testWire) WriteFrames(qs []Queued) error {
	frames := make([][]byte, len(qs))
	for i := range qs {
		frames[i] = qs[i].bytes()
	}
	w.batches <- frames
	return <-w.results
}

// bytes returns what is left of q as one slice.
func (q *Queued) bytes() []byte {
	var b []byte
	q.each(func(p []byte) bool {
		b = append(b, p...)
		return true
	})
	return b
}

func (w *testWire) CloseWire(reason error) { w.closes <- reason }

// testDeadline bounds every wait, so a bug fails the test instead of
// hanging it.
const testDeadline = 10 * time.Second

// take waits for the writer's next batch and leaves the writer blocked.
func (w *testWire) take(t *testing.T) []string {
	t.Helper()
	select {
	case b := <-w.batches:
		s := make([]string, len(b))
		for i, f := range b {
			s[i] = string(f)
		}
		return s
	case <-time.After(testDeadline):
		t.Fatal("no batch written")
		return nil
	}
}

// release lets the blocked writer return err.
func (w *testWire) release(err error) { w.results <- err }

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// writerRunning reports whether o's writer goroutine is alive, from the
// goroutine stacks: its flush frame names o as the receiver.
func writerRunning(o *Outbox) bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Contains(string(buf[:n]), fmt.Sprintf("(*Outbox).flush(%p", o))
		}
		buf = make([]byte, 2*len(buf))
	}
}

func waitIdle(t *testing.T, o *Outbox) {
	t.Helper()
	waitFor(t, "the writer goroutine to exit", func() bool {
		o.mu.Lock()
		writing := o.writing
		o.mu.Unlock()
		return !writing && !writerRunning(o)
	})
}

func TestOutboxOfferBoundsQueue(t *testing.T) {
	t.Parallel()
	w := newTestWire()
	o := NewOutbox(w, w, 10)
	if !o.Offer([]byte("a")) {
		t.Fatal("offer to an empty outbox refused")
	}
	if got := w.take(t); fmt.Sprint(got) != "[a]" {
		t.Fatalf("first batch = %q", got)
	}
	// The writer holds "a"; the queue is empty again.
	steps := []struct {
		frame string
		want  bool
	}{
		{"0123456789abcdef", true}, // larger than max, but the queue is empty
		{"x", false},
	}
	for i, s := range steps {
		if got := o.Offer([]byte(s.frame)); got != s.want {
			t.Fatalf("step %d: offer(%q) = %v, want %v", i, s.frame, got, s.want)
		}
	}
	w.release(nil)
	if got := w.take(t); fmt.Sprint(got) != "[0123456789abcdef]" {
		t.Fatalf("second batch = %q", got)
	}
	// Fill to exactly max, then one byte more.
	if !o.Offer([]byte("0123")) || !o.Offer([]byte("45")) || !o.Offer([]byte("6789")) {
		t.Fatal("offer up to max refused")
	}
	if o.Offer([]byte("!")) {
		t.Fatal("offer beyond max accepted")
	}
	w.release(nil)
	if got := w.take(t); fmt.Sprint(got) != "[0123 45 6789]" {
		t.Fatalf("third batch = %q", got)
	}
	w.release(nil)
	waitIdle(t, o)
	o.Close(nil)
}

func TestOutboxWritesInOrder(t *testing.T) {
	t.Parallel()
	w := newTestWire()
	o := NewOutbox(w, w, 1<<20)
	ctx := context.Background()
	var want, got []string
	for i := range 50 {
		f := fmt.Sprint(i)
		want = append(want, f)
		switch i % 3 {
		case 0:
			o.Offer([]byte(f))
		case 1:
			o.OfferWith(func() Queued { return One([]byte(f)) })
		case 2:
			if err := o.Send(ctx, []byte(f)); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		if i%7 == 0 { // let the writer take a batch now and then
			got = append(got, w.take(t)...)
			w.release(nil)
		}
	}
	for len(got) < len(want) {
		got = append(got, w.take(t)...)
		w.release(nil)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("written %q, want %q", got, want)
	}
	waitIdle(t, o)
	o.Close(nil)
}

func TestOutboxSendWaitsForRoom(t *testing.T) {
	t.Parallel()
	w := newTestWire()
	o := NewOutbox(w, w, 4)
	ctx := context.Background()
	if err := o.Send(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	w.take(t) // the writer holds "a"
	if err := o.Send(ctx, []byte("bbbb")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- o.Send(ctx, []byte("c")) }()
	waitFor(t, "send to wait for room", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.room != nil
	})
	select {
	case err := <-done:
		t.Fatalf("send returned %v while the queue was full", err)
	default:
	}
	w.release(nil)
	if got := w.take(t); fmt.Sprint(got) != "[bbbb]" {
		t.Fatalf("second batch = %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("send after room = %v", err)
	}
	w.release(nil)
	if got := w.take(t); fmt.Sprint(got) != "[c]" {
		t.Fatalf("third batch = %q", got)
	}
	w.release(nil)
	waitIdle(t, o)
	o.Close(nil)
}

func TestOutboxSendUnblocks(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"cancel", "close"} {
		w := newTestWire()
		o := NewOutbox(w, w, 1)
		ctx, cancel := context.WithCancel(context.Background())
		o.Offer([]byte("a"))
		w.take(t)
		o.Offer([]byte("b")) // full
		done := make(chan error, 1)
		go func() { done <- o.Send(ctx, []byte("c")) }()
		waitFor(t, "send to wait for room", func() bool {
			o.mu.Lock()
			defer o.mu.Unlock()
			return o.room != nil
		})
		want := context.Canceled
		if how == "close" {
			want = ErrClosed
			o.Close(nil)
		} else {
			cancel()
		}
		if err := <-done; !errors.Is(err, want) {
			t.Errorf("%s: send = %v, want %v", how, err, want)
		}
		cancel()
		o.Close(nil)
		w.release(nil)
		waitIdle(t, o)
	}
}

func TestOutboxClose(t *testing.T) {
	t.Parallel()
	w := newTestWire()
	o := NewOutbox(w, w, 10)
	reason := errors.New("bye")
	var wg sync.WaitGroup
	firsts := make(chan bool, 8)
	for range 8 {
		wg.Go(func() { firsts <- o.Close(reason) })
	}
	wg.Wait()
	close(firsts)
	n := 0
	for first := range firsts {
		if first {
			n++
		}
	}
	if n != 1 {
		t.Errorf("close returned true %d times, want once", n)
	}
	if got := <-w.closes; got != reason {
		t.Errorf("closeWire(%v), want %v", got, reason)
	}
	if len(w.closes) != 0 {
		t.Errorf("closeWire called %d more times", len(w.closes))
	}
	if !o.IsClosed() {
		t.Error("isClosed() = false after close")
	}
	if !o.Offer([]byte("x")) || !o.OfferWith(func() Queued { return One([]byte("y")) }) {
		t.Error("offer to a closed outbox refused; it should drop")
	}
	if err := o.Send(context.Background(), []byte("z")); !errors.Is(err, ErrClosed) {
		t.Errorf("send after close = %v, want ErrClosed", err)
	}
	waitIdle(t, o)
}

func TestOutboxWriteErrorCloses(t *testing.T) {
	t.Parallel()
	w := newTestWire()
	o := NewOutbox(w, w, 10)
	o.Offer([]byte("a"))
	w.take(t)
	o.Offer([]byte("b")) // queued behind the failing write: dropped
	broken := errors.New("broken pipe")
	w.release(broken)
	if got := <-w.closes; got != broken {
		t.Errorf("closeWire(%v), want %v", got, broken)
	}
	waitIdle(t, o)
	if o.Close(nil) {
		t.Error("close after a write error returned true")
	}
	if len(w.closes) != 0 {
		t.Errorf("closeWire called %d more times", len(w.closes))
	}
}

func TestOutboxIdleHoldsNoWriter(t *testing.T) {
	t.Parallel()
	w := newTestWire()
	o := NewOutbox(w, w, 10)
	if writerRunning(o) {
		t.Fatal("writer running before any frame")
	}
	for round := range 3 {
		o.Offer([]byte(fmt.Sprint(round)))
		if got := w.take(t); fmt.Sprint(got) != fmt.Sprintf("[%d]", round) {
			t.Fatalf("round %d: batch = %q", round, got)
		}
		if !writerRunning(o) {
			t.Fatalf("round %d: writer not found while writing", round)
		}
		w.release(nil)
		waitIdle(t, o)
	}
	o.Close(nil)
}
