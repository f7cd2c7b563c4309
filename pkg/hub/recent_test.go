package hub

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

func entriesOf(ms ...uint64) *store.Batch {
	b := &store.Batch{}
	for _, m := range ms {
		b.Entries = append(b.Entries, store.Entry{ID: protocol.ID{Ms: m}, Data: "xxxxxxxxxx"})
	}
	return b
}

func idsOf(msgs []*Message) []uint64 {
	var out []uint64
	for _, m := range msgs {
		out = append(out, m.Entry.ID.Ms)
	}
	return out
}

// A replay from a position the runs a channel has just fanned out cover is
// served from them, as a tail of one run or a whole run; from anywhere
// else it is left to the store.
func TestRecentAfter(t *testing.T) {
	now := time.Now()
	ch := &channel{name: "c"}
	var used atomic.Int64
	keep := func(b *store.Batch) {
		ch.keep(messagesOf("c", b), now, &used, 1<<20, time.Minute)
		ch.cursor = b.Last(ch.cursor) // as dispatch does
	}
	keep(entriesOf(1, 2, 3, 5))
	keep(entriesOf(6, 7))
	keep(entriesOf(8, 9))

	for _, tt := range []struct {
		pos  uint64
		want []uint64
		ok   bool
	}{
		{0, nil, false}, // the start of the stream, which may have been reset since
		{1, []uint64{2, 3, 5}, true},
		{2, []uint64{3, 5}, true},
		{5, []uint64{6, 7}, true}, // the end of one run is where the next was read after
		{7, []uint64{8, 9}, true},
		{9, nil, false},  // the end: the store may know of a reset
		{4, nil, false},  // not an entry: a gap, or not, is for the store to say
		{10, nil, false}, // ahead of what was read
	} {
		got, ok := ch.recentAfter(protocol.ID{Ms: tt.pos}, now)
		if ok != tt.ok || !slices.Equal(idsOf(got), tt.want) {
			t.Errorf("after %d: %v, %v; want %v, %v", tt.pos, idsOf(got), ok, tt.want, tt.ok)
		}
	}
	if got, _ := ch.recentAfter(protocol.ID{Ms: 2}, now); &got[0] != &ch.recent[0].msgs[2] /* entry 3 */ {
		t.Error("the replay is not a part of the run, so its frames are not shared")
	}

	// A run read across a gap is served whole from where it was read
	// after, its notice first, as the live subscribers had it.
	gapped := entriesOf(20, 21)
	gapped.Gap = &store.Gap{Reason: store.GapTrimmed, From: protocol.ID{Ms: 9}, Resume: protocol.ID{Ms: 19}}
	keep(gapped)
	if got, ok := ch.recentAfter(protocol.ID{Ms: 9}, now); !ok || got[0].Gap != gapped.Gap || !slices.Equal(idsOf(got[1:]), []uint64{20, 21}) {
		t.Errorf("after 9, which a gap follows: %v, %v; want the gap's notice, then 20 and 21", got, ok)
	}
	if got, ok := ch.recentAfter(protocol.ID{Ms: 20}, now); !ok || !slices.Equal(idsOf(got), []uint64{21}) {
		t.Errorf("after 20: %v, %v; want [21] from the runs kept", idsOf(got), ok)
	}

	// A run is kept for its time after it was last served: replays of a
	// large burst outlast the time from its read.
	later := now.Add(50 * time.Second)
	ch.recentAfter(protocol.ID{Ms: 2}, later)
	ch.expire(now.Add(70*time.Second), time.Minute, &used)
	if len(ch.recent) != 4 {
		t.Fatalf("%d runs kept after the first was served 20 s ago; want all 4", len(ch.recent))
	}
	ch.expire(later.Add(70*time.Second), time.Minute, &used)
	if len(ch.recent) != 0 || used.Load() != 0 {
		t.Errorf("%d runs (%d bytes) kept past their time", len(ch.recent), used.Load())
	}
	ch.keep(messagesOf("c", entriesOf(30)), now, &used, 1<<20, time.Minute)
	ch.expire(now.Add(2*time.Minute), time.Minute, &used)
	if len(ch.recent) != 0 || used.Load() != 0 {
		t.Errorf("%d runs (%d bytes) kept past their time", len(ch.recent), used.Load())
	}

	// The budget is shared: a channel makes room by dropping its own
	// oldest runs, and keeps nothing when others hold the room.
	other := &channel{name: "d"}
	other.keep(messagesOf("d", entriesOf(1)), now, &used, 45, time.Minute)
	ch.keep(messagesOf("c", entriesOf(1, 2, 3)), now, &used, 45, time.Minute)
	ch.keep(messagesOf("c", entriesOf(4, 5)), now, &used, 45, time.Minute)
	if len(ch.recent) != 1 || used.Load() != 30 {
		t.Errorf("%d runs kept, %d bytes in all; want the newest alone, 30 bytes", len(ch.recent), used.Load())
	}
	ch.keep(messagesOf("c", entriesOf(6, 7, 8, 9, 10)), now, &used, 45, time.Minute)
	if len(ch.recent) != 0 || used.Load() != 10 {
		t.Errorf("%d runs kept, %d bytes in all; want none beside the other channel's 10", len(ch.recent), used.Load())
	}
}
