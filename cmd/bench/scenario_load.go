package main

import (
	"context"
	"sync"
	"time"

	"github.com/pushcluster/pushcluster/internal/backoff"
	"github.com/pushcluster/pushcluster/internal/waitfor"
)

// load is the default scenario: open the clients at the ramp, publish at
// the rate, and measure delivery over the window after the warm-up.
func (r *runner) load(ctx context.Context) error {
	cfg := r.cfg
	base, pid, stopNode, err := r.openNode(ctx)
	if err != nil {
		return err
	}
	defer stopNode()
	ph, err := r.newPhase(ctx, base, cfg.SSE, cfg.WS, newChannelPlan(cfg.Channels, cfg.ChannelBase))
	if err != nil {
		return err
	}
	defer ph.close()
	r.step("opening %d clients at %g/s from %s", cfg.clients(), cfg.Ramp, r.src.describe())
	ph.fleet.start(ctx, cfg.Ramp)
	if err := ph.fleet.waitReady(ctx, cfg.ReadyTimeout); err != nil {
		r.note("%v; measuring with the clients that are", err)
	}
	s, err := newSink(cfg, base)
	if err != nil {
		return err
	}
	defer s.close()
	pub := newPublisher(ph.env, s)
	pubCtx, stopPub := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { pub.run(pubCtx, cfg.PublishRate, r.rng, nil) })
	r.step("publishing %g msg/s via %s; warming up for %s", cfg.PublishRate, cfg.Via, cfg.Warmup)
	backoff.Sleep(ctx, cfg.Warmup)
	w, err := r.measureWindow(ctx, ph, pid, pub, func() {}, func() { stopPub(); wg.Wait() })
	if err != nil {
		return err
	}
	r.report.Connections = ph.connReport()
	r.report.Delivery = r.deliveryReport(ph, w)
	if pid != 0 {
		r.report.Node = &ProcReport{PID: pid, CPUSeconds: w.cpu.Seconds(), CPUUsPerDelivery: ratio(float64(w.cpu.Microseconds()), float64(w.deliveredAfter)), RSSBytes: w.rss}
	}
	r.report.Timeline = ph.prog.seconds()
	return nil
}

// windowResult is what measureWindow saw.
type windowResult struct {
	start, end     time.Time
	sent           []int64       // messages published in the window, per channel
	deliveries     int64         // received between start and end
	deliveredAfter int64         // received between start and the end of the drain
	cpu            time.Duration // of the node, from start to the end of the drain
	rss            int64
}

// measureWindow marks the window, calls begin, lets the window run, calls
// stop (which must stop publishing), and waits up to the drain time for
// the steady clients to receive everything pub sent in the window.
func (r *runner) measureWindow(ctx context.Context, ph *phase, pid int, pub *publisher, begin, stop func()) (w windowResult, err error) {
	m := ph.env.m
	var cpu *cpuMeter
	if pid != 0 {
		if cpu, err = startCPU(pid); err != nil {
			return w, err
		}
	}
	d0 := m.deliveries.Load()
	w.start = time.Now()
	ph.env.win.start.Store(w.start.UnixNano())
	begin()
	r.step("measuring for %s", r.cfg.Duration)
	backoff.Sleep(ctx, r.cfg.Duration)
	w.end = time.Now()
	ph.env.win.end.Store(w.end.UnixNano())
	w.deliveries = m.deliveries.Load() - d0
	stop()
	w.sent = pub.sentInWindow()
	complete := func() bool {
		_, expected, received := ph.steady(w.start, w.sent)
		return received >= expected
	}
	if err := waitfor.Until(ctx, r.cfg.Drain, 10*time.Millisecond, complete); err != nil && ctx.Err() == nil {
		r.note("deliveries still missing %s after the window", r.cfg.Drain)
	}
	w.deliveredAfter = m.deliveries.Load() - d0
	if cpu != nil {
		if w.cpu, err = cpu.used(); err != nil {
			return w, err
		}
		w.rss, err = processRSS(pid)
	}
	return w, err
}

// deliveryReport summarizes the window.
func (r *runner) deliveryReport(ph *phase, w windowResult) *DeliveryReport {
	m := ph.env.m
	steady, expected, received := ph.steady(w.start, w.sent)
	var published int64
	for _, n := range w.sent {
		published += n
	}
	return &DeliveryReport{
		Published: published, PublishFailed: m.publishFailed.Load(), Overrun: m.overrun.Load(),
		Deliveries: w.deliveries, PerSecond: float64(w.deliveries) / w.end.Sub(w.start).Seconds(),
		Expected: expected, Received: received, Missing: max(expected-received, 0), Steady: steady,
		Duplicates: m.dups.Load(), Skipped: m.holes.Load(), Gaps: m.gaps.Load(),
		Errors: m.errors.Load(), Reconnects: m.reconnects.Load(), Foreign: m.foreign.Load(),
		LatencyMs: percentiles(m.latency.Snapshot()),
	}
}
