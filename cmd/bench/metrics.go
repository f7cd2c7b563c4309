package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushcluster/pushcluster/internal/hist"
)

// metrics are the live counters every client and the publisher add to.
type metrics struct {
	connected     atomic.Int64 // streams open and subscribed now
	established   atomic.Int64 // clients that subscribed at least once
	connectFailed atomic.Int64 // attempts that never subscribed
	reconnects    atomic.Int64 // streams lost while the run wanted them
	deliveries    atomic.Int64 // messages received, all of them
	errors        atomic.Int64 // error events and unreadable payloads
	gaps          atomic.Int64 // loss the server reported
	dups          atomic.Int64 // sequence numbers seen again
	holes         atomic.Int64 // sequence numbers skipped
	foreign       atomic.Int64 // payloads of another run or tool
	published     atomic.Int64
	publishFailed atomic.Int64
	overrun       atomic.Int64 // publishes skipped: a worker fell behind the rate

	latency     hist.Histogram // publish → receive, messages sent in the window
	interval    hist.Histogram // publish → receive, since the last progress tick
	connectTime hist.Histogram // dial → subscribed
}

// second is one progress tick: what the last second looked like.
type second struct {
	T          float64 `json:"t"` // seconds since the run started
	Connected  int64   `json:"connected"`
	Deliveries int64   `json:"deliveries_per_s"`
	Published  int64   `json:"published_per_s"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	Errors     int64   `json:"errors"`
	Reconnects int64   `json:"reconnects"`
	Gaps       int64   `json:"gaps"`
}

// progress prints a line per second and keeps the timeline.
type progress struct {
	m      *metrics
	out    io.Writer
	target int
	start  time.Time

	mu       sync.Mutex
	timeline []second
}

func newProgress(m *metrics, out io.Writer, target int) *progress {
	return &progress{m: m, out: out, target: target, start: time.Now()}
}

// run ticks every second until ctx ends.
func (p *progress) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastDeliv, lastPub int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s := p.sample(now, &lastDeliv, &lastPub)
			p.mu.Lock()
			p.timeline = append(p.timeline, s)
			p.mu.Unlock()
			fmt.Fprintln(p.out, p.line(s))
		}
	}
}

func (p *progress) sample(now time.Time, lastDeliv, lastPub *int64) second {
	iv := p.m.interval.Swap()
	d, pub := p.m.deliveries.Load(), p.m.published.Load()
	s := second{
		T:          math.Round(now.Sub(p.start).Seconds()*10) / 10,
		Connected:  p.m.connected.Load(),
		Deliveries: d - *lastDeliv,
		Published:  pub - *lastPub,
		P50ms:      ms(iv.Quantile(0.5)),
		P99ms:      ms(iv.Quantile(0.99)),
		Errors:     p.m.errors.Load() + p.m.publishFailed.Load(),
		Reconnects: p.m.reconnects.Load(),
		Gaps:       p.m.gaps.Load(),
	}
	*lastDeliv, *lastPub = d, pub
	return s
}

func (p *progress) line(s second) string {
	return fmt.Sprintf("%6.0fs  conn %d/%d  deliv/s %d  pub/s %d  p50 %.2fms  p99 %.2fms  err %d  reconn %d  gaps %d  failed-conn %d",
		s.T, s.Connected, p.target, s.Deliveries, s.Published, s.P50ms, s.P99ms, s.Errors, s.Reconnects, s.Gaps, p.m.connectFailed.Load())
}

// note prints a step of the run between progress lines.
func (p *progress) note(format string, args ...any) {
	fmt.Fprintf(p.out, "bench: "+format+"\n", args...)
}

// seconds returns the timeline so far.
func (p *progress) seconds() []second {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]second(nil), p.timeline...)
}

// ms converts nanoseconds to milliseconds.
func ms(ns int64) float64 { return float64(ns) / 1e6 }
