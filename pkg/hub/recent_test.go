package hub

import (
	"slices"
	"testing"
	"time"

	"github.com/pushcluster/pushcluster/pkg/store"
)

func entriesOf(ms ...uint64) *store.Batch {
	b := &store.Batch{}
	for _, m := range ms {
		b.Entries = append(b.Entries, store.Entry{ID: store.ID{Ms: m}, Data: "xxxxxxxxxx"})
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

// A replay from inside the runs a channel has just fanned out is served
// from them, as a tail of one run; from anywhere else, or across a gap, it
// is left to the store.
func TestRecentAfter(t *testing.T) {
	now := time.Now()
	ch := &channel{name: "c"}
	ch.keep(messagesOf("c", entriesOf(1, 2, 3, 5)), now, 1<<20, time.Minute)
	ch.keep(messagesOf("c", entriesOf(6, 7)), now, 1<<20, time.Minute)
	gapped := entriesOf(20, 21)
	gapped.Gap = &store.Gap{Reason: store.GapTrimmed, From: store.ID{Ms: 7}, Resume: store.ID{Ms: 19}}

	for _, tt := range []struct {
		pos  uint64
		want []uint64
		ok   bool
	}{
		{0, nil, false}, // where the first run was read from: the store may know of a reset since
		{1, []uint64{2, 3, 5}, true},
		{2, []uint64{3, 5}, true},
		{5, []uint64{6, 7}, true}, // the end of one run is where the next was read from
		{7, nil, false},           // the end: the store may know of a reset
		{4, nil, false},           // not an entry: a gap, or not, is for the store to say
		{8, nil, false},           // ahead of what was read
	} {
		got, ok := ch.recentAfter(store.ID{Ms: tt.pos})
		if ok != tt.ok || !slices.Equal(idsOf(got), tt.want) {
			t.Errorf("after %d: %v, %v; want %v, %v", tt.pos, idsOf(got), ok, tt.want, tt.ok)
		}
	}
	if got, _ := ch.recentAfter(store.ID{Ms: 2}); &got[0] != &ch.recent[0].msgs[2] /* entry 3 */ {
		t.Error("the replay is not a part of the run, so its frames are not shared")
	}

	ch.keep(messagesOf("c", gapped), now, 1<<20, time.Minute)
	if got, ok := ch.recentAfter(store.ID{Ms: 7}); ok {
		t.Errorf("after 7, which a gap follows: %v from the runs kept, want the store asked", idsOf(got))
	}
	if got, ok := ch.recentAfter(store.ID{Ms: 20}); !ok || !slices.Equal(idsOf(got), []uint64{21}) {
		t.Errorf("after 20: %v, %v; want [21] from the runs kept", idsOf(got), ok)
	}

	ch.expire(now.Add(2*time.Minute), 1<<20, time.Minute)
	if len(ch.recent) != 0 || ch.recentBytes != 0 {
		t.Errorf("%d runs (%d bytes) kept past their time", len(ch.recent), ch.recentBytes)
	}
	ch.keep(messagesOf("c", entriesOf(1, 2, 3)), now, 25, time.Minute)
	ch.keep(messagesOf("c", entriesOf(4, 5)), now, 25, time.Minute)
	if len(ch.recent) != 1 || ch.recentBytes != 20 {
		t.Errorf("%d runs of %d bytes kept, want the newest alone within 25 bytes", len(ch.recent), ch.recentBytes)
	}
}
