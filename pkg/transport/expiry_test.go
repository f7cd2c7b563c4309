package transport

import (
	"sync"
	"testing"
	"time"
)

// endRecorder is an adapter that tells out its connection's name when it
// is ended.
type endRecorder struct {
	adapter // only end is called
	name    string
	out     chan string
}

func (r *endRecorder) end(error) { r.out <- r.name }

// Connections expire in the order of their expiry, a removed one never,
// and one already expired cannot be removed.
func TestExpiries(t *testing.T) {
	t.Parallel()
	var e expiries
	out := make(chan string, 10)
	srv := &Server{}
	mk := func(name string) *conn { return &conn{srv: srv, a: &endRecorder{name: name, out: out}} }
	now := time.Now()
	a, b, c, d := mk("a"), mk("b"), mk("c"), mk("d")
	e.add(c, now.Add(150*time.Millisecond))
	e.add(a, now.Add(50*time.Millisecond))
	e.add(b, now.Add(100*time.Millisecond))
	e.add(d, now.Add(120*time.Millisecond))
	e.add(mk("never"), time.Time{})
	if !e.remove(d) || e.remove(d) {
		t.Fatal("remove")
	}
	var got []string
	for range 3 {
		select {
		case n := <-out:
			got = append(got, n)
		case <-time.After(5 * time.Second):
			t.Fatalf("expired so far: %v", got)
		}
	}
	if got[0] != "a" || got[1] != "b" || got[2] != "c" {
		t.Errorf("order %v", got)
	}
	if e.remove(a) {
		t.Error("an expired connection removed")
	}
	select {
	case n := <-out:
		t.Errorf("%s expired too", n)
	case <-time.After(100 * time.Millisecond): // what is tested is that nothing more happens
	}
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			f := mk("x")
			e.add(f, now.Add(time.Hour+time.Duration(i)))
			e.remove(f)
		})
	}
	wg.Wait()
	if len(e.q) != 0 {
		t.Errorf("%d left queued", len(e.q))
	}
}
