package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// runPublisher starts p, stopped when the test ends.
func runPublisher(t *testing.T, p *Publisher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// waitGroupFor waits for wg, failing the test if it has not finished after
// total: a deadlock detector, not a claim about speed.
func waitGroupFor(t *testing.T, wg *sync.WaitGroup, total time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(total):
		t.Fatalf("%s still blocked after %v", what, total)
	}
}

// Concurrent publishes share pipelines, and each gets the ID of its own entry.
func TestPublisherConcurrentPublishes(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Config{})
	p, err := NewPublisher(PublisherConfig{Store: s, Workers: 2, MaxBatch: 16})
	if err != nil {
		t.Fatal(err)
	}
	runPublisher(t, p)
	const n = 200
	ids := make([]protocol.ID, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = p.Publish(context.Background(), "c", Message{Data: fmt.Sprint(i), Event: "e"})
		}()
	}
	waitGroupFor(t, &wg, time.Minute, "publishes")
	msgs, err := s.rdb.XRange(t.Context(), s.Key("c"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]map[string]any{}
	for _, m := range msgs {
		byID[m.ID] = m.Values
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("publish %d: %v", i, errs[i])
		}
		v := byID[ids[i].String()]
		if v[FieldData] != fmt.Sprint(i) || v[FieldEvent] != "e" {
			t.Errorf("publish %d: entry %v holds %v", i, ids[i], v)
		}
	}
	if len(msgs) != n {
		t.Errorf("%d entries, want %d", len(msgs), n)
	}
	if _, err := p.Publish(t.Context(), "a b", Message{}); !errors.Is(err, protocol.ErrInvalidChannel) {
		t.Errorf("invalid channel: %v, want protocol.ErrInvalidChannel", err)
	}
}

// Publish racing with shutdown returns in every interleaving: it is either
// sent, refused with ErrPublisherClosed, or (in flight as Redis was cut off)
// fails with the shutdown's cancellation; and after Run has returned it is
// refused at once. None waits on its own context, which here never ends.
func TestPublisherShutdownStrandsNoPublish(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Config{})
	for round := range 40 {
		p, err := NewPublisher(PublisherConfig{Store: s, Workers: 2, Queue: 4})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			p.Run(ctx)
		}()
		var sent atomic.Int64
		var wg sync.WaitGroup
		var mu sync.Mutex
		var unexpected []error
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					_, err := p.Publish(context.Background(), "c", Message{Data: "x"})
					switch {
					case err == nil:
						if sent.Add(1) == 20 {
							cancel()
						}
						continue
					case !errors.Is(err, ErrPublisherClosed) && !errors.Is(err, context.Canceled):
						mu.Lock()
						unexpected = append(unexpected, err)
						mu.Unlock()
					}
					return
				}
			}()
		}
		waitGroupFor(t, &wg, time.Minute, fmt.Sprintf("round %d: publishes racing with shutdown", round))
		<-stopped
		cancel()
		for _, err := range unexpected {
			t.Errorf("round %d: %v", round, err)
		}
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := p.Publish(context.Background(), "c", Message{Data: "late"}); !errors.Is(err, ErrPublisherClosed) {
					t.Errorf("round %d: publish after Run returned: %v, want ErrPublisherClosed", round, err)
				}
			}()
		}
		waitGroupFor(t, &wg, time.Minute, fmt.Sprintf("round %d: publishes after shutdown", round))
	}
}
