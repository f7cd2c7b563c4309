//go:build unix

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/pkg/store"
)

// gapMark stands for a gap in what a client received on a channel.
const gapMark = "\x00gap"

// steadyPublisher XADDs to its channels in turn, every few milliseconds,
// until halted, as any Redis client would; each payload is
// "<channel>/<n>", written at most once, so payloads name entries.
type steadyPublisher struct {
	t        *testing.T
	c        *cluster
	rdb      redis.UniversalClient // retries no command: see onceClient
	channels []string
	stop     chan struct{}
	done     chan struct{}

	mu     sync.Mutex
	acked  map[string][]string // payloads Redis acknowledged, by channel
	failed int                 // XADDs that failed (a shard failing over)
}

func startSteady(t *testing.T, c *cluster, channels []string, every time.Duration) *steadyPublisher {
	p := &steadyPublisher{t: t, c: c, rdb: onceClient(t, c.rdb), channels: channels, stop: make(chan struct{}), done: make(chan struct{}), acked: map[string][]string{}}
	go p.run(every)
	t.Cleanup(p.halt)
	return p
}

// onceClient returns a client that sends each command at most once. By
// default go-redis sends a command again when its connection fails before
// the reply, and in a failover the first copy may have reached the old
// primary: the payload is then written twice, once lost and once kept, and
// a check by payload cannot tell what the client got of which. A publisher
// that never resends writes each payload once; a failed publish counts as
// failed even if the old primary took it, and is then either lost or in
// the log, both of which the check allows.
func onceClient(t *testing.T, rdb redis.UniversalClient) redis.UniversalClient {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		o := *c.Options()
		o.MaxRedirects = -1 // no redirect or resend; the publisher reloads the slots itself
		cc := redis.NewClusterClient(&o)
		t.Cleanup(func() { cc.Close() })
		return cc
	case *redis.Client:
		if c.Options().MaxRetries > 0 { // -1 given is 0 once set up
			t.Fatal("the publisher's client must not resend commands: set MaxRetries: -1")
		}
	}
	return rdb
}

func (p *steadyPublisher) run(every time.Duration) {
	defer close(p.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		ch := p.channels[n%len(p.channels)]
		msg := fmt.Sprintf("%s/%d", ch, n)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := p.rdb.XAdd(ctx, &redis.XAddArgs{Stream: p.c.prefix + ch, Values: []any{"data", msg}}).Err()
		cancel()
		if cc, ok := p.rdb.(*redis.ClusterClient); ok && err != nil {
			cc.ReloadState(context.Background()) // as a client that keeps up with failovers would
		}
		p.mu.Lock()
		if err != nil {
			p.failed++
		} else {
			p.acked[ch] = append(p.acked[ch], msg)
		}
		p.mu.Unlock()
	}
}

// halt stops publishing and waits. It is safe to call more than once.
func (p *steadyPublisher) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// sent returns how many publishes Redis acknowledged.
func (p *steadyPublisher) sent() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, m := range p.acked {
		n += len(m)
	}
	return n
}

// waitSent waits until n more publishes have been acknowledged.
func (p *steadyPublisher) waitSent(n int) {
	p.t.Helper()
	want := p.sent() + n
	checkFor(p.t, 30*time.Second, func() error {
		if got := p.sent(); got < want {
			return fmt.Errorf("%d of %d publishes acknowledged", got, want)
		}
		return nil
	})
}

// logged returns each channel's payloads as the log now holds them, in order.
func (p *steadyPublisher) logged() map[string][]string {
	p.t.Helper()
	out := map[string][]string{}
	for _, ch := range p.channels {
		var msgs []redis.XMessage
		checkFor(p.t, 10*time.Second, func() (err error) { // the test's client may lag a failover
			msgs, err = p.c.rdb.XRange(context.Background(), p.c.prefix+ch, "-", "+").Result()
			if cc, ok := p.c.rdb.(*redis.ClusterClient); ok && err != nil {
				cc.ReloadState(context.Background())
			}
			return err
		})
		for _, m := range msgs {
			out[ch] = append(out[ch], fmt.Sprint(m.Values["data"]))
		}
	}
	return out
}

// lost returns the acknowledged payloads the log no longer holds: writes
// a failover lost because the replica had not received them.
func (p *steadyPublisher) lost(log map[string][]string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for ch, msgs := range p.acked {
		for _, m := range msgs {
			if !slices.Contains(log[ch], m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// sseReceived is what an SSE client got, by channel: payloads and gaps.
func sseReceived(s *sseStream) map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for _, ev := range s.events {
		switch {
		case ev.Event == "push.gap":
			var g struct{ Channels []string }
			json.Unmarshal([]byte(ev.Data), &g)
			for _, ch := range g.Channels {
				out[ch] = append(out[ch], gapMark)
			}
		case !strings.HasPrefix(ev.Event, "push."):
			ch, _, _ := strings.Cut(ev.Data, "/")
			out[ch] = append(out[ch], ev.Data)
		}
	}
	return out
}

// wsReceived is what a WebSocket client got, by channel.
func wsReceived(w *wsClient) map[string][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][]string{}
	for _, f := range w.frames {
		ch, _ := f["channel"].(string)
		switch f["type"] {
		case "gap":
			out[ch] = append(out[ch], gapMark)
		case "message":
			out[ch] = append(out[ch], fmt.Sprint(f["data"]))
		}
	}
	return out
}

// exactlyOnce checks what a client got on every channel against the log:
// every entry of the log once, in order; and any entry it got that the log
// no longer holds (lost in a failover) followed by a gap before the next
// entry, never a silent hole. It returns how many gaps the client got.
func exactlyOnce(log, got map[string][]string) (gaps int, err error) {
	for ch, want := range log {
		g := got[ch]
		seen := map[string]bool{}
		i := 0
		owesGap := ""
		for _, d := range g {
			if d == gapMark {
				gaps++
				owesGap = ""
				continue
			}
			if seen[d] {
				return gaps, fmt.Errorf("%s: %q twice", ch, d)
			}
			seen[d] = true
			if i < len(want) && want[i] == d {
				if owesGap != "" {
					return gaps, fmt.Errorf("%s: %q, lost in the failover, was followed by %q with no gap", ch, owesGap, d)
				}
				i++
				continue
			}
			if slices.Contains(want, d) {
				return gaps, fmt.Errorf("%s: got %q where the log has %q next: out of order or a hole", ch, d, want[i])
			}
			owesGap = d
		}
		if i < len(want) {
			return gaps, fmt.Errorf("%s: got %d of the log's %d entries; next missing %q", ch, i, len(want), want[i])
		}
	}
	return gaps, nil
}

// waitExactlyOnce waits until got() holds every entry of the log exactly
// once, in order, and returns the number of gaps seen.
func waitExactlyOnce(t *testing.T, what string, log map[string][]string, got func() map[string][]string) int {
	t.Helper()
	var gaps int
	checkFor(t, 30*time.Second, func() error {
		var err error
		gaps, err = exactlyOnce(log, got())
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	return gaps
}

type readyAnswer struct {
	Ready    bool
	Delivery string
	Shards   []store.ShardStatus
}

// waitShardsNotified waits until n answers /readyz with every one of
// shards shards notified.
func waitShardsNotified(t *testing.T, n *testNode, shards int) readyAnswer {
	t.Helper()
	var r readyAnswer
	checkFor(t, 30*time.Second, func() error {
		r = readyAnswer{}
		code := getJSON(t, n.base+"/readyz", &r)
		if code != http.StatusOK || len(r.Shards) != shards || r.Delivery != store.DeliveryNotify {
			return fmt.Errorf("/readyz %d: %+v", code, r)
		}
		return nil
	})
	return r
}
