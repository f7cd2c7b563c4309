//go:build unix

package tests

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/pushcluster/pushcluster/pkg/node"
)

// A channel the node stops publishing to expires after -channel-ttl. A
// client resuming in it afterwards is told (reset: its position is beyond
// what is there), and so are live subscribers when it is published again.
func TestExpiredChannelIsAGap(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a", func(cfg *node.Config) { cfg.ChannelTTL = 300 * time.Millisecond })
	live := openSSE(t, sseURL(a, "exp"), "")
	live.waitWelcome()
	publish(t, a, map[string]string{"channel": "exp", "data": "before"})
	live.waitData(1)
	last := live.lastEventID()
	checkFor(t, defaultWait, func() error {
		if n := c.rdb.Exists(context.Background(), c.prefix+"exp").Val(); n != 0 {
			return errors.New("the channel has not expired yet")
		}
		return nil
	})

	s := openSSE(t, sseURL(a, "exp"), last)
	gaps := s.waitNamed("push.gap", 1)
	var g struct{ Reason, From string }
	if err := json.Unmarshal([]byte(gaps[0].Data), &g); err != nil || g.Reason != "reset" || g.From != last {
		t.Errorf("resume in an expired channel: push.gap %q, want reset from %s", gaps[0].Data, last)
	}
	var h struct{ Gap *struct{ Reason string } }
	getJSON(t, a.base+"/api/history?channel=exp&since="+last, &h)
	if h.Gap == nil || h.Gap.Reason != "reset" {
		t.Errorf("history in an expired channel: gap %+v, want reset", h.Gap)
	}

	publish(t, a, map[string]string{"channel": "exp", "data": "after"})
	equalStrings(t, "live across the expiry", live.waitData(2), []string{"before", "after"})
	equalStrings(t, "resumed", s.waitData(1), []string{"after"})
	if g := live.named("push.gap"); len(g) != 1 {
		t.Errorf("live subscriber: %d gaps, want one when the expired channel comes back", len(g))
	}
}
