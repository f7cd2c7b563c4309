package hub

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// countingConn is a Conn that keeps nothing and counts what it is offered.
// One worker serves a subscriber per batch and dispatch waits for all of
// them, so its plain counters are never written concurrently.
type countingConn struct {
	client              string
	offers, msgs, kicks int
}

func (c *countingConn) Client() string { return c.client }

func (c *countingConn) Offer(_ *Sub, msgs []*Message) bool {
	c.offers++
	c.msgs += len(msgs)
	return true
}

func (c *countingConn) Send(_ context.Context, _ *Sub, msgs []*Message) error {
	c.msgs += len(msgs)
	return nil
}

func (c *countingConn) Kick(error) { c.kicks++ }

// BenchmarkDispatch measures fanning one read of a channel out to its
// subscribers: inline (one worker) and spread over two workers, for one
// entry per read and for a burst of 16.
func BenchmarkDispatch(b *testing.B) {
	payload := strings.Repeat("x", 100)
	for _, workers := range []int{1, 2} {
		for _, entries := range []int{1, 16} {
			for _, subs := range []int{1, 100, 4000, 10000} {
				name := fmt.Sprintf("workers=%d/entries=%d/subs=%d", workers, entries, subs)
				b.Run(name, func(b *testing.B) {
					benchmarkDispatch(b, workers, entries, subs, payload)
				})
			}
		}
	}
}

func benchmarkDispatch(b *testing.B, workers, entries, nSubs int, payload string) {
	ch := &channel{stats: &counters{}, name: "c"}
	conns := make([]*countingConn, nSubs)
	for i := range conns {
		conns[i] = &countingConn{client: fmt.Sprintf("client-%d", i)}
		ch.add(&Sub{ch: ch, conn: conns[i], idx: -1})
	}
	f := newFanout(workers)
	f.run()
	defer f.stop()

	// dispatch copies the entries into its messages, so the batch is reused
	// with fresh, increasing IDs: subscribers skip IDs they have had.
	batch := &store.Batch{Entries: make([]store.Entry, entries)}
	for i := range batch.Entries {
		batch.Entries[i].Data = payload
	}
	var ms uint64
	b.ReportAllocs()
	for b.Loop() {
		ms++
		for i := range batch.Entries {
			batch.Entries[i].ID = protocol.ID{Ms: ms, Seq: uint64(i)}
		}
		ch.dispatch(batch, f, nil)
	}
	deliveries := b.N * nSubs * entries
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(deliveries), "ns/delivery")

	for _, c := range conns {
		if c.msgs != b.N*entries || c.offers != b.N || c.kicks != 0 {
			b.Fatalf("%s: %d messages in %d offers, %d kicks; want %d in %d, none",
				c.client, c.msgs, c.offers, c.kicks, b.N*entries, b.N)
		}
	}
}
