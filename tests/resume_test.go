//go:build unix

package tests

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// An SSE client leaves node a and comes back on node b with its
// Last-Event-ID: it gets exactly what it missed, then live messages.
func TestSSEResumeOnOtherNode(t *testing.T) {
	t.Parallel()
	for _, channels := range [][]string{{"one"}, {"x", "y", "z"}} {
		t.Run(fmt.Sprint(len(channels)), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			a, b := c.start("a"), c.start("b")
			s := openSSE(t, sseURL(a, channels...), "")
			s.waitWelcome()
			pub := func(from, to int) []string {
				var want []string
				for i := from; i < to; i++ {
					want = append(want, c.xaddSeq(channels[i%len(channels)], i))
				}
				return want
			}
			want := pub(0, 10)
			equalPerChannel(t, "before leaving", s.waitData(10), want)
			last := s.lastEventID()
			s.close()

			want = pub(10, 25)
			s2 := openSSE(t, sseURL(b, channels...), last)
			if w := s2.waitWelcome(); w.ID != last {
				t.Errorf("welcome id %q, want the resumed position %q", w.ID, last)
			}
			s2.waitData(15)
			want = append(want, pub(25, 30)...)
			equalPerChannel(t, "after resuming on b", s2.waitData(20), want)
			if g := s2.named("push.gap"); len(g) != 0 {
				t.Errorf("unexpected gap: %+v", g)
			}
		})
	}
}

// A client that saw nothing before disconnecting still resumes without loss:
// the welcome event carries the starting position as its ID.
func TestSSEResumeBeforeAnyMessage(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("a"), c.start("b")
	c.xadd("quiet", "data", "old")
	s := openSSE(t, sseURL(a, "quiet"), "")
	s.waitWelcome()
	last := s.lastEventID()
	s.close()
	c.xadd("quiet", "data", "missed")
	s2 := openSSE(t, sseURL(b, "quiet"), last)
	equalStrings(t, "resumed", s2.waitData(1), []string{"missed"})
}

// WebSocket subscribe with since replays on another node, then goes live.
func TestWebSocketSinceOnOtherNode(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("a"), c.start("b")
	w := dialWS(t, a, "?channel=ws")
	w.waitType("subscribed", 1)
	for i := range 5 {
		c.xadd("ws", "data", fmt.Sprintf("m%d", i))
	}
	w.waitData(5)
	since := w.lastID()
	w.close()
	for i := 5; i < 12; i++ {
		publish(t, a, map[string]string{"channel": "ws", "data": fmt.Sprintf("m%d", i)})
	}
	w2 := dialWS(t, b, "")
	w2.send(map[string]any{"type": "subscribe", "channel": "ws", "since": since, "ref": 1})
	w2.waitData(7)
	c.xadd("ws", "data", "m12")
	equalStrings(t, "after since", w2.waitData(8), seqData("m", 5, 13))
}

// Clients hop between three nodes at random moments while a publisher runs
// flat out; each ends with every message exactly once, in order.
func TestRandomizedHandOver(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	nodes := []*testNode{c.start("a"), c.start("b"), c.start("c")}
	channels := []string{"h1", "h2"}

	const hoppers = 4
	results := make([][]string, hoppers)
	var ready, hw sync.WaitGroup
	stop := make(chan struct{})
	for h := range hoppers {
		ready.Add(1)
		hw.Add(1)
		go func() {
			defer hw.Done()
			results[h] = hop(t, nodes, channels, rand.New(rand.NewPCG(uint64(h), 7)), ready.Done, stop)
		}()
	}
	ready.Wait()

	var want []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			want = append(want, c.xaddSeq(channels[i%2], i))
		}
	}()

	time.AfterFunc(3*time.Second, func() { close(stop) })
	wg.Wait()
	hw.Wait()
	t.Logf("%d messages published", len(want))
	for h, got := range results {
		equalPerChannel(t, fmt.Sprintf("hopper %d", h), got, want)
	}
}

// hop keeps one logical subscription alive across reconnects to random nodes
// until stop, then drains and returns every message it received. It calls
// ready once its first connection is subscribed.
func hop(t *testing.T, nodes []*testNode, channels []string, rng *rand.Rand, ready func(), stop chan struct{}) []string {
	var got []string
	last := ""
	for {
		s := openSSE(t, sseURL(nodes[rng.IntN(len(nodes))], channels...), last)
		if last == "" {
			s.waitWelcome()
			ready()
		}
		select {
		case <-stop:
			s.waitWelcome()
			s.waitQuiet()
			s.close()
			return append(got, s.data()...)
		case <-time.After(time.Duration(rng.IntN(200)) * time.Millisecond):
		}
		s.close()
		got = append(got, s.data()...)
		if id := s.lastEventID(); id != "" {
			last = id
		}
	}
}

// A client thousands of messages behind is replayed in batches, while
// publishing goes on, and handed over to live delivery without loss.
func TestLongReplayUnderLoad(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("a"), c.start("b")
	s := openSSE(t, sseURL(a, "long"), "")
	s.waitWelcome()
	last := s.lastEventID()
	s.close()
	pipe := c.rdb.Pipeline()
	var want []string
	for i := range 3000 {
		msg := fmt.Sprintf("long/%d", i)
		pipe.XAdd(t.Context(), &redis.XAddArgs{Stream: c.prefix + "long", Values: []any{"data", msg}})
		want = append(want, msg)
	}
	if _, err := pipe.Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	s2 := openSSE(t, sseURL(b, "long"), last)
	w := dialWS(t, a, "")
	w.send(map[string]any{"type": "subscribe", "channel": "long", "since": last})
	for i := 3000; i < 3200; i++ {
		want = append(want, c.xaddSeq("long", i))
	}
	equalStrings(t, "SSE replay", s2.waitData(len(want)), want)
	equalStrings(t, "WebSocket replay", w.waitData(len(want)), want)
}

// A position from before a stream that never lost an entry resumes without
// a gap: nothing is missing. The same position on a stream that was trimmed
// is a gap, since what was trimmed may have followed it.
func TestResumeBeforeFirstEntryIsNoGap(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a")
	want := []string{c.xaddSeq("whole", 0), c.xaddSeq("whole", 1)}
	for _, last := range []string{"1-0", "1732590000000-0"} {
		s := openSSE(t, sseURL(a, "whole"), last)
		equalStrings(t, "resume from "+last, s.waitData(2), want)
		if g := s.named("push.gap"); len(g) != 0 {
			t.Errorf("resume from %s: push.gap %q on a stream that lost nothing", last, g[0].Data)
		}
		s.close()
		var h struct {
			Entries []struct{ Data string }
			Gap     any
		}
		getJSON(t, a.base+"/api/history?channel=whole&since="+last, &h)
		if len(h.Entries) != 2 || h.Gap != nil {
			t.Errorf("history since %s: %d entries, gap %v; want 2 and no gap", last, len(h.Entries), h.Gap)
		}
	}

	for i := range 3 {
		c.xaddSeq("cut", i)
	}
	c.rdb.XTrimMaxLen(t.Context(), c.prefix+"cut", 1)
	s := openSSE(t, sseURL(a, "cut"), "1-0")
	if g := s.waitNamed("push.gap", 1); !strings.Contains(g[0].Data, `"trimmed"`) {
		t.Errorf("resume before a trimmed stream: push.gap %q, want trimmed", g[0].Data)
	}
	equalStrings(t, "after the gap", s.waitData(1), []string{"cut/2"})
}

// A subscription without a usable position (none, malformed, or for other
// channels) starts from the channel's current end, and its welcome carries
// that position: a client that reconnects with it before any message gets
// what followed, and nothing older. A channel with no entries starts at
// 0-0, before every entry it will get.
func TestWelcomeCarriesTheStartPosition(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a")
	c.xaddSeq("w", 0)
	end := c.xadd("w", "data", "w/1")
	for _, tc := range []struct{ name, last, want string }{
		{"no Last-Event-ID", "", end},
		{"malformed", "not-an-id", end},
		{"malformed cursor", "x:1-0", end},
	} {
		s := openSSE(t, sseURL(a, "w"), tc.last)
		if w := s.waitWelcome(); w.ID != tc.want {
			t.Errorf("%s: welcome id %q, want the current end %q", tc.name, w.ID, tc.want)
		}
		s.close()
	}
	s := openSSE(t, sseURL(a, "w", "empty"), "00000000:1-0,1-0")
	welcome := s.waitWelcome()
	s.close()
	if want := ":0-0," + end; !strings.HasSuffix(welcome.ID, want) { // channels in order: empty, w
		t.Errorf("mismatched cursor: welcome id %q, want <hash>%s", welcome.ID, want)
	}
	missed := []string{c.xaddSeq("w", 2), c.xaddSeq("empty", 0)}
	s2 := openSSE(t, sseURL(a, "w", "empty"), welcome.ID)
	equalPerChannel(t, "resumed from the welcome", s2.waitData(2), missed)
	if g := s2.named("push.gap"); len(g) != 0 {
		t.Errorf("resumed from the welcome: push.gap %q", g[0].Data)
	}
}

// Clients that come back from the same position one after another, as a
// dead node's clients do, are replayed from one read: the first reads the
// store, the rest are served what it read. Each still gets exactly what
// it missed.
func TestReplaysFromOnePositionShareOneRead(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("a"), c.start("b")
	s := openSSE(t, sseURL(a, "storm"), "")
	s.waitWelcome()
	for i := range 5 {
		c.xaddSeq("storm", i)
	}
	s.waitData(5)
	last := s.lastEventID()
	s.close()
	var want []string
	for i := 5; i < 10; i++ {
		want = append(want, c.xaddSeq("storm", i))
	}
	before := b.Hub().Stats()
	const clients = 10
	for i := range clients {
		s := openSSE(t, sseURL(b, "storm"), last) // kept open: the channel stays of interest
		equalStrings(t, fmt.Sprintf("client %d", i), s.waitData(5), want)
	}
	st := b.Hub().Stats()
	replays, recent := st.Replays-before.Replays, st.RecentReplays-before.RecentReplays
	if replays < clients || recent < clients-1 {
		t.Errorf("%d replays, %d of them served from the first one's read; want %d and %d", replays, recent, clients, clients-1)
	}
}
