package hub

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var errUnexpectedSend = errors.New("live delivery must not call Send")

// recordingConn is a Conn that records what it is offered, as "<id>" for an
// entry and "gap:<reason>" for a gap. Fan-out workers offer concurrently.
type recordingConn struct {
	client string
	refuse atomic.Bool // Offer reports a full queue

	mu         sync.Mutex
	sub        *Sub
	got        []string
	kicks      []error
	lateOffers int // offers after the kick
	wrong      []string
}

func (c *recordingConn) Client() string { return c.client }

func (c *recordingConn) Offer(s *Sub, msgs []*Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.kicks) > 0 {
		c.lateOffers++
	}
	if s != c.sub {
		c.wrong = append(c.wrong, "offered another connection's subscription")
	}
	if len(msgs) == 0 {
		c.wrong = append(c.wrong, "offered no messages")
	}
	if c.refuse.Load() {
		return false
	}
	for _, m := range msgs {
		if m.Channel != s.ch.name {
			c.wrong = append(c.wrong, fmt.Sprintf("message on channel %q", m.Channel))
		}
		c.got = append(c.got, describe(m))
	}
	return true
}

func (c *recordingConn) Send(context.Context, *Sub, []*Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wrong = append(c.wrong, "Send called")
	return errUnexpectedSend
}

func (c *recordingConn) Kick(reason error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kicks = append(c.kicks, reason)
}

func (c *recordingConn) snapshot() (got []string, kicks []error, late int, wrong []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got), slices.Clone(c.kicks), c.lateOffers, slices.Clone(c.wrong)
}

func describe(m *Message) string {
	if m.Gap != nil {
		return "gap:" + m.Gap.Reason
	}
	return m.Entry.ID.String()
}

// newTestChannel returns a channel "c" with n live subscribers, client
// "c<i>" for subscriber i, and a fan-out of workers, stopped at cleanup.
func newTestChannel(t *testing.T, n, workers int) (*channel, *fanout, []*recordingConn, []*Sub) {
	t.Helper()
	ch := &channel{stats: &counters{}, name: "c"}
	conns := make([]*recordingConn, n)
	subs := make([]*Sub, n)
	for i := range n {
		conns[i] = &recordingConn{client: fmt.Sprintf("c%d", i)}
		subs[i] = &Sub{ch: ch, conn: conns[i], idx: -1}
		conns[i].sub = subs[i]
		ch.add(subs[i])
	}
	f := newFanout(workers)
	f.run()
	t.Cleanup(f.stop)
	return ch, f, conns, subs
}

// Every subscriber gets each entry meant for it once and in order, over
// several fan-out workers; subscribers whose queue is full are kicked once,
// removed, and get nothing more.
func TestDispatchDeliversEachEntryOnceInOrder(t *testing.T) {
	t.Parallel()
	const (
		nSubs    = 1000
		nBatches = 50
		refuseAt = 20 // the batch from which the refusers' queues are full
	)
	ch, f, conns, subs := newTestChannel(t, nSubs, 2)
	if n := min(f.workers, nSubs/shardMin); n < 2 {
		t.Fatalf("%d subscribers make %d shard(s); the test needs several", nSubs, n)
	}
	// In both shards, at their edges and inside.
	refusers := []int{0, 7, 499, 500, 731, nSubs - 1}
	isRefuser := func(k int) bool { return slices.Contains(refusers, k) }

	rng := rand.New(rand.NewPCG(1, 2))
	batches := make([]store.Batch, nBatches)
	for i := range batches {
		for j := range 1 + rng.IntN(5) {
			e := store.Entry{ID: protocol.ID{Ms: uint64(i) + 1, Seq: uint64(j)}, Data: fmt.Sprint(i, "/", j)}
			switch rng.IntN(4) {
			case 0:
				e.To = conns[rng.IntN(nSubs)].client
			case 1:
				e.Exclude = conns[rng.IntN(nSubs)].client
			}
			batches[i].Entries = append(batches[i].Entries, e)
		}
	}
	// Every refuser is offered something once its queue is full, and is
	// addressed after being kicked.
	batches[refuseAt].Entries[0].To, batches[refuseAt].Entries[0].Exclude = "", ""
	batches[refuseAt+1].Entries[0].To = conns[refusers[1]].client
	batches[refuseAt+2].Entries[0].Exclude = conns[refusers[2]].client

	for i := range batches {
		if i == refuseAt {
			for _, k := range refusers {
				conns[k].refuse.Store(true)
			}
		}
		ch.dispatch(&batches[i], f, nil)
	}

	accepted := 0
	for k, c := range conns {
		var want []string
		for i, b := range batches {
			if isRefuser(k) && i >= refuseAt {
				break
			}
			for _, e := range b.Entries {
				if e.For(c.client) {
					want = append(want, e.ID.String())
				}
			}
		}
		got, kicks, late, wrong := c.snapshot()
		accepted += len(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s received %v, want %v", c.client, got, want)
		}
		if len(wrong) > 0 {
			t.Errorf("%s: %v", c.client, wrong)
		}
		if !isRefuser(k) {
			if len(kicks) > 0 {
				t.Errorf("%s was kicked: %v", c.client, kicks)
			}
			if subs[k].idx < 0 || subs[k].idx >= len(ch.subs) || ch.subs[subs[k].idx] != subs[k] {
				t.Errorf("%s is not live at index %d", c.client, subs[k].idx)
			}
			continue
		}
		if len(kicks) != 1 || !errors.Is(kicks[0], ErrSlowConsumer) {
			t.Errorf("refuser %s kicked with %v, want once with ErrSlowConsumer", c.client, kicks)
		}
		if late > 0 {
			t.Errorf("refuser %s was offered %d more times after its kick", c.client, late)
		}
		if subs[k].idx != -1 || slices.Contains(ch.subs, subs[k]) {
			t.Errorf("refuser %s is still subscribed (idx %d)", c.client, subs[k].idx)
		}
	}

	if got, want := len(ch.subs), nSubs-len(refusers); got != want {
		t.Errorf("%d subscribers left, want %d", got, want)
	}
	if got, want := ch.stats.subscriptions.Load(), int64(nSubs-len(refusers)); got != want {
		t.Errorf("stats.subscriptions = %d, want %d", got, want)
	}
	if got, want := ch.stats.kicked.Load(), uint64(len(refusers)); got != want {
		t.Errorf("stats.kicked = %d, want %d", got, want)
	}
	if got := ch.stats.delivered.Load(); got != uint64(accepted) {
		t.Errorf("stats.delivered = %d, want the %d messages accepted", got, accepted)
	}
	last := batches[nBatches-1].Entries
	if want := last[len(last)-1].ID; ch.cursor != want {
		t.Errorf("cursor = %v, want the last ID %v", ch.cursor, want)
	}
}

// A gap is news to every subscriber: it is offered to all of them, before
// the entries read with it, whoever those entries are for.
func TestDispatchOffersGapToEverySubscriber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		batch store.Batch
		want  func(client string) []string
		last  protocol.ID
	}{
		{
			name:  "alone",
			batch: store.Batch{Gap: &store.Gap{Reason: store.GapTrimmed}},
			want:  func(string) []string { return []string{"gap:trimmed"} },
		},
		{
			name: "resuming",
			batch: store.Batch{Gap: &store.Gap{
				Reason: store.GapTrimmed, From: protocol.ID{Ms: 1}, Resume: protocol.ID{Ms: 3},
			}},
			want: func(string) []string { return []string{"gap:trimmed"} },
			last: protocol.ID{Ms: 3},
		},
		{
			name: "with entries",
			batch: store.Batch{
				Gap: &store.Gap{Reason: store.GapReset, From: protocol.ID{Ms: 9}, Resume: protocol.ID{Ms: 3}},
				Entries: []store.Entry{
					{ID: protocol.ID{Ms: 4}, To: "c10"},
					{ID: protocol.ID{Ms: 5}, Exclude: "c900"},
				},
			},
			want: func(client string) []string {
				switch client {
				case "c10":
					return []string{"gap:reset", "4-0", "5-0"}
				case "c900":
					return []string{"gap:reset"}
				}
				return []string{"gap:reset", "5-0"}
			},
			last: protocol.ID{Ms: 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const nSubs = 1000
			ch, f, conns, _ := newTestChannel(t, nSubs, 2)
			ch.dispatch(&tt.batch, f, nil)
			delivered := 0
			for _, c := range conns {
				got, kicks, _, wrong := c.snapshot()
				delivered += len(got)
				if want := tt.want(c.client); !slices.Equal(got, want) {
					t.Errorf("%s received %v, want %v", c.client, got, want)
				}
				if len(kicks) > 0 || len(wrong) > 0 {
					t.Errorf("%s: kicked %v; %v", c.client, kicks, wrong)
				}
			}
			gaps := ch.stats.gapsTrimmed.Load() + ch.stats.gapsReset.Load()
			if gaps != nSubs {
				t.Errorf("gaps counted = %d, want %d", gaps, nSubs)
			}
			if got := ch.stats.delivered.Load(); got != uint64(delivered) {
				t.Errorf("stats.delivered = %d, want %d", got, delivered)
			}
			if ch.cursor != tt.last {
				t.Errorf("cursor = %v, want %v", ch.cursor, tt.last)
			}
		})
	}
}

// A subscriber that is ahead of the channel (it replayed further than the
// read loop has fanned out) skips the entries it already has.
func TestDispatchSkipsEntriesUpToPosition(t *testing.T) {
	t.Parallel()
	ch, f, conns, subs := newTestChannel(t, 3, 1)
	subs[1].pos = protocol.ID{Ms: 2, Seq: 1}
	ch.dispatch(&store.Batch{Entries: []store.Entry{
		{ID: protocol.ID{Ms: 1}}, {ID: protocol.ID{Ms: 2}}, {ID: protocol.ID{Ms: 2, Seq: 1}}, {ID: protocol.ID{Ms: 3}},
	}}, f, nil)
	ch.dispatch(&store.Batch{Entries: []store.Entry{{ID: protocol.ID{Ms: 3}}, {ID: protocol.ID{Ms: 4}}}}, f, nil)
	wants := [][]string{
		{"1-0", "2-0", "2-1", "3-0", "4-0"},
		{"3-0", "4-0"},
		{"1-0", "2-0", "2-1", "3-0", "4-0"},
	}
	for i, c := range conns {
		if got, _, _, _ := c.snapshot(); !slices.Equal(got, wants[i]) {
			t.Errorf("%s received %v, want %v", c.client, got, wants[i])
		}
	}
}
