package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/pkg/devstore"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

type readCase struct {
	name, channel, after string
	seen                 bool
	want                 []string // entry IDs
	gap, resume          string   // reason ("" for none) and resume position
}

func (tc readCase) check(t *testing.T, b Batch) {
	t.Helper()
	var got []string
	for _, e := range b.Entries {
		got = append(got, e.ID.String())
	}
	if !slices.Equal(got, tc.want) {
		t.Errorf("%s: entries %v, want %v", tc.name, got, tc.want)
	}
	switch {
	case tc.gap == "" && b.Gap != nil:
		t.Errorf("%s: gap %+v, want none: nothing is missing", tc.name, *b.Gap)
	case tc.gap != "" && b.Gap == nil:
		t.Errorf("%s: no gap, want %s", tc.name, tc.gap)
	case tc.gap != "" && (b.Gap.Reason != tc.gap || b.Gap.From.String() != tc.after || b.Gap.Resume.String() != tc.resume):
		t.Errorf("%s: gap %s from %v resume %v, want %s from %s resume %s",
			tc.name, b.Gap.Reason, b.Gap.From, b.Gap.Resume, tc.gap, tc.after, tc.resume)
	}
}

// A position the stream does not hold is a gap only when entries after it
// were deleted: a stream never trimmed has lost nothing, whatever position
// a client brings. Each case is read alone and all together in one ReadMany.
func TestReadAfterGaps(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Config{})
	ctx := t.Context()
	add := func(channel string, ids ...string) {
		for _, id := range ids {
			xadd(t, s, channel, id, "d"+id)
		}
	}
	add("whole", "10-0", "20-0", "30-0")
	add("trimmed", "10-0", "20-0", "30-0", "40-0", "50-0")
	s.rdb.XTrimMaxLen(ctx, s.Key("trimmed"), 2) // exact: keeps 40, 50; max-deleted 30-0
	add("emptied", "10-0", "20-0")
	s.rdb.XTrimMaxLen(ctx, s.Key("emptied"), 0)
	add("deleted", "10-0", "20-0")
	s.rdb.Del(ctx, s.Key("deleted"))
	add("xdel", "10-0", "20-0", "30-0")
	s.rdb.XDel(ctx, s.Key("xdel"), "20-0")
	add("recreated", "10-0", "20-0")
	s.rdb.Del(ctx, s.Key("recreated"))
	add("recreated", "30-0")
	now := xadd(t, s, "now", "*", "now").String()

	cases := []readCase{
		{name: "before the first entry of a stream never trimmed", channel: "whole", after: "1-0", want: []string{"10-0", "20-0", "30-0"}},
		{name: "the README's example protocol.ID, before a stream never trimmed", channel: "now", after: "1732590000000-0", want: []string{now}},
		// Not an entry, inside the stream: a failover that promoted a replica
		// without it looks the same, and then what follows it is lost too.
		{name: "between entries, never an entry", channel: "whole", after: "15-0", want: []string{"20-0", "30-0"}, gap: GapTrimmed, resume: "15-0"},
		{name: "found", channel: "whole", after: "20-0", want: []string{"30-0"}},
		{name: "from the start", channel: "whole", after: "0-0", want: []string{"10-0", "20-0", "30-0"}},
		{name: "beyond the end", channel: "whole", after: "99-0", gap: GapReset, resume: "30-0"},
		{name: "entries after the position trimmed", channel: "trimmed", after: "10-0", want: []string{"40-0", "50-0"}, gap: GapTrimmed, resume: "10-0"},
		// Trimming keeps no record of the IDs it removed: 35-0 may have been one.
		{name: "before the first entry of a trimmed stream", channel: "trimmed", after: "35-0", want: []string{"40-0", "50-0"}, gap: GapTrimmed, resume: "35-0"},
		{name: "seen, before the first entry of a trimmed stream", channel: "trimmed", after: "30-0", seen: true, want: []string{"40-0", "50-0"}, gap: GapTrimmed, resume: "30-0"},
		{name: "inside a trimmed stream, never an entry", channel: "trimmed", after: "45-0", want: []string{"50-0"}, gap: GapTrimmed, resume: "45-0"},
		{name: "all trimmed, position before the last", channel: "emptied", after: "10-0", gap: GapTrimmed, resume: "0-0"},
		{name: "all trimmed, position at the end", channel: "emptied", after: "20-0"},
		{name: "all trimmed, position beyond the end", channel: "emptied", after: "21-0", gap: GapReset, resume: "0-0"},
		{name: "key deleted", channel: "deleted", after: "20-0", gap: GapReset, resume: "0-0"},
		{name: "no stream, from the start", channel: "never", after: "0-0"},
		{name: "the position deleted alone", channel: "xdel", after: "20-0", want: []string{"30-0"}},
		{name: "seen, the position deleted alone", channel: "xdel", after: "20-0", seen: true, want: []string{"30-0"}},
		{name: "seen, vanished with no deletion", channel: "xdel", after: "25-0", seen: true, want: []string{"30-0"}, gap: GapTrimmed, resume: "25-0"},
		{name: "before a deleted entry", channel: "xdel", after: "15-0", want: []string{"30-0"}, gap: GapTrimmed, resume: "15-0"},
		// Redis keeps no trace of a deleted stream: only a reader that saw
		// its position as an entry knows the stream it was in is gone.
		{name: "a client's position from a re-created stream", channel: "recreated", after: "20-0", want: []string{"30-0"}},
		{name: "a seen position from a re-created stream", channel: "recreated", after: "20-0", seen: true, want: []string{"30-0"}, gap: GapTrimmed, resume: "20-0"},
	}
	var cursors []Cursor
	for _, tc := range cases {
		c := Cursor{Channel: tc.channel, After: mustID(t, tc.after), Seen: tc.seen}
		cursors = append(cursors, c)
		if !tc.seen {
			b, err := s.ReadAfter(ctx, tc.channel, c.After, 100)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			tc.check(t, b)
		}
	}
	batches, err := s.ReadMany(ctx, cursors, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		tc.name = "ReadMany: " + tc.name
		tc.check(t, batches[i])
	}
}

// A read stops at its limit and says more follows, whether or not its
// position was found.
func TestReadAfterLimit(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Config{})
	for i := 1; i <= 5; i++ {
		xadd(t, s, "c", fmt.Sprintf("%d-0", 10*i), "x")
	}
	for _, after := range []string{"10-0", "5-0"} {
		b, err := s.ReadAfter(t.Context(), "c", mustID(t, after), 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Entries) != 2 || !b.Full || b.Gap != nil {
			t.Errorf("after %s: %d entries, full %v, gap %v; want 2, full, no gap", after, len(b.Entries), b.Full, b.Gap)
		}
		if last := b.Last(mustID(t, after)); last != b.Entries[1].ID {
			t.Errorf("after %s: Last %v, want %v", after, last, b.Entries[1].ID)
		}
	}
}

// A key holding something other than a stream fails its own read only.
func TestReadManyUnreadableKey(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Config{})
	s.rdb.Set(t.Context(), s.Key("str"), "not a stream", 0)
	xadd(t, s, "ok", "10-0", "x")
	for _, after := range []string{"0-0", "5-0"} {
		bs, err := s.ReadMany(t.Context(), []Cursor{{Channel: "str", After: mustID(t, after)}, {Channel: "ok"}}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(bs[0].Err, ErrUnreadable) {
			t.Errorf("after %s: wrong-type key read with %v, want ErrUnreadable", after, bs[0].Err)
		}
		if bs[1].Err != nil || len(bs[1].Entries) != 1 {
			t.Errorf("after %s: the other channel got %+v", after, bs[1])
		}
	}
}

// A server that keeps no record of deletions (Redis before 7, the embedded
// development store) cannot tell a position from before the stream from one
// whose entries were trimmed: every position not found is reported.
func TestReadAfterWithoutDeletionRecord(t *testing.T) {
	t.Parallel()
	dev, err := devstore.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	rdb := redis.NewClient(&redis.Options{Addr: dev.Addr()})
	t.Cleanup(func() { rdb.Close() })
	s := newTestStore(t, Config{Client: rdb})
	for _, id := range []string{"10-0", "20-0", "30-0"} {
		xadd(t, s, "c", id, "x")
	}
	cases := []readCase{
		{name: "before the first entry", channel: "c", after: "1-0", want: []string{"10-0", "20-0", "30-0"}, gap: GapTrimmed, resume: "1-0"},
		{name: "between entries", channel: "c", after: "15-0", want: []string{"20-0", "30-0"}, gap: GapTrimmed, resume: "15-0"},
		{name: "found", channel: "c", after: "20-0", want: []string{"30-0"}},
		{name: "beyond the end", channel: "c", after: "99-0", gap: GapReset, resume: "30-0"},
		{name: "no stream", channel: "none", after: "5-0", gap: GapReset, resume: "0-0"},
	}
	for _, tc := range cases {
		b, err := s.ReadAfter(t.Context(), tc.channel, mustID(t, tc.after), 100)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		tc.check(t, b)
	}
}

// A raw XADD may name any event; one reserved for the node's control events
// is read as no event at all, so it can never reach a subscriber as one.
func TestReservedEventsOfRawEntriesAreDropped(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Config{})
	for _, ev := range []string{"push.gap", "push.error", "push.welcome", "myEve", "push"} {
		if err := s.rdb.XAdd(t.Context(), &redis.XAddArgs{Stream: s.Key("c"), Values: []any{FieldEvent, ev, FieldData, ev}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.ReadAfter(t.Context(), "c", protocol.ID{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range b.Entries {
		got = append(got, e.Data+"="+e.Event)
	}
	want := []string{"push.gap=", "push.error=", "push.welcome=", "myEve=myEve", "push=push"}
	if !slices.Equal(got, want) {
		t.Errorf("data=event read %v, want %v", got, want)
	}
	if _, err := s.Publish(t.Context(), "c", Message{Event: "push.gap", Data: "x"}); !errors.Is(err, protocol.ErrInvalidEvent) {
		t.Errorf("publishing a reserved event: %v, want protocol.ErrInvalidEvent", err)
	}
}

// Moved tells the streams that hold entries after their cursors from those
// that do not, in one XREAD, and errs towards reading when Redis cannot
// answer for a group.
func TestMoved(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Config{})
	ctx := t.Context()
	xadd(t, s, "still", "10-0", "a")
	xadd(t, s, "moved", "10-0", "a")
	xadd(t, s, "moved", "20-0", "b")
	xadd(t, s, "fresh", "10-0", "a")
	xadd(t, s, "trimmed", "10-0", "a")
	xadd(t, s, "trimmed", "20-0", "b")
	s.rdb.XTrimMaxLen(ctx, s.Key("trimmed"), 1)
	cursors := []Cursor{
		{Channel: "still", After: mustID(t, "10-0")},
		{Channel: "moved", After: mustID(t, "10-0")},
		{Channel: "fresh"}, // zero: the start of the stream
		{Channel: "none", After: mustID(t, "10-0")},
		{Channel: "trimmed", After: mustID(t, "10-0")}, // its cursor is gone, an entry after it is not
	}
	want := []bool{false, true, true, false, true}
	if got := s.Moved(ctx, cursors); !slices.Equal(got, want) {
		t.Fatalf("moved %v, want %v", got, want)
	}
	// A key that is not a stream makes Redis refuse the whole XREAD: every
	// channel of it is read, where the bad one is found alone.
	s.rdb.Set(ctx, s.Key("none"), "x", 0)
	if got := s.Moved(ctx, cursors); !slices.Equal(got, []bool{true, true, true, true, true}) {
		t.Fatalf("with a bad key: moved %v, want all", got)
	}
	if got := s.Moved(ctx, nil); len(got) != 0 {
		t.Fatalf("no cursors: %v", got)
	}
}
