package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pushcluster/pushcluster/internal/hist"
	"github.com/pushcluster/pushcluster/internal/waitfor"
)

// resume is the reconnect storm: the clients subscribe and receive, all
// go away, Behind messages per channel are published, then all reconnect
// at once from their last event ID and the tool times each one's catch-up.
func (r *runner) resume(ctx context.Context) error {
	cfg := r.cfg
	base, _, stopNode, err := r.openNode(ctx)
	if err != nil {
		return err
	}
	defer stopNode()
	ph, err := r.newPhase(ctx, base, cfg.SSE, cfg.WS, newChannelPlan(cfg.Channels, cfg.ChannelBase))
	if err != nil {
		return err
	}
	defer ph.close()
	// Resuming from an entry that trimming removed is reported as a gap, so
	// keep more than the clients will be behind.
	cfg.MaxLen = max(cfg.MaxLen, 2*int64(cfg.Behind)+1000)
	s, err := newSink(cfg, base)
	if err != nil {
		return err
	}
	defer s.close()
	pub := newPublisher(ph.env, s)
	used := ph.usedChannels()
	if err := r.connectAndReceive(ctx, ph, pub, used); err != nil {
		return err
	}
	r.report.Connections = ph.connReport()
	ph.fleet.stop()
	r.step("all %d clients disconnected; publishing %d messages to each of %d channels", cfg.clients(), cfg.Behind, len(used))
	res := &ResumeReport{Clients: cfg.clients(), Behind: cfg.Behind}
	start := time.Now()
	ph.env.win.start.Store(start.UnixNano())
	pub.burst(ctx, used, cfg.Behind)
	ph.env.win.end.Store(time.Now().UnixNano() + 1)
	res.PublishSecs = time.Since(start).Seconds()
	r.storm(ctx, ph, pub, res)
	r.report.Resume = res
	r.report.Timeline = ph.prog.seconds()
	return nil
}

// connectAndReceive opens the clients at the ramp and waits until each has
// received one message, so every one resumes from a real entry.
func (r *runner) connectAndReceive(ctx context.Context, ph *phase, pub *publisher, used []int) error {
	r.step("opening %d clients at %g/s from %s", r.cfg.clients(), r.cfg.Ramp, r.src.describe())
	ph.fleet.start(ctx, r.cfg.Ramp)
	if err := ph.fleet.waitReady(ctx, r.cfg.ReadyTimeout); err != nil {
		return err
	}
	pub.burst(ctx, used, 1)
	want := int64(len(ph.fleet.clients))
	err := waitfor.Until(ctx, r.cfg.ReadyTimeout, 10*time.Millisecond, func() bool { return ph.env.m.deliveries.Load() >= want })
	if err != nil {
		return fmt.Errorf("bench: %d of %d clients received the first message: %w", ph.env.m.deliveries.Load(), want, err)
	}
	return nil
}

// storm reconnects every client at once and waits until each has received
// the newest message of its channel.
func (r *runner) storm(ctx context.Context, ph *phase, pub *publisher, res *ResumeReport) {
	m := ph.env.m
	var caught atomic.Int64
	var catchup hist.Histogram
	for _, c := range ph.fleet.clients {
		c.target = pub.newest[c.channel].Load()
		c.inWindow.Store(0)
	}
	sent := pub.sentInWindow()
	base := snapshotCounters(m)
	m.connectTime.Swap()
	start := time.Now()
	ph.env.onMessage = func(c *client, st stamp, now time.Time) {
		if c.caughtUp == 0 && st.Seq >= c.target {
			c.caughtUp = now.Sub(start)
			catchup.Record(c.caughtUp.Nanoseconds())
			caught.Add(1)
		}
	}
	r.step("reconnecting all %d clients at once", len(ph.fleet.clients))
	ph.fleet.start(ctx, 0)
	want := int64(len(ph.fleet.clients))
	if err := waitfor.Until(ctx, r.cfg.CatchupTimeout, 2*time.Millisecond, func() bool { return caught.Load() >= want }); err == nil {
		res.AllCaughtUpMs = ms(time.Since(start).Nanoseconds())
	} else {
		r.note("%d of %d clients caught up within %s", caught.Load(), want, r.cfg.CatchupTimeout)
	}
	ph.fleet.stop()
	r.fillResume(ph, res, sent, base, &catchup, int(caught.Load()))
}

func (r *runner) fillResume(ph *phase, res *ResumeReport, sent []int64, base counters, catchup *hist.Histogram, caught int) {
	m := ph.env.m
	for _, n := range sent {
		res.Published += n
	}
	for _, c := range ph.fleet.clients {
		res.Expected += sent[c.channel]
		res.Missing += max(sent[c.channel]-c.inWindow.Load(), 0)
	}
	now := snapshotCounters(m)
	res.CaughtUp = caught
	res.CatchupMs = percentiles(catchup.Snapshot())
	res.ReconnectMs = percentiles(m.connectTime.Snapshot())
	res.Replayed = now.deliveries - base.deliveries
	if res.AllCaughtUpMs > 0 {
		res.ReplayPerSec = float64(res.Replayed) / (res.AllCaughtUpMs / 1000)
	}
	res.Duplicates = now.dups - base.dups
	res.Gaps = now.gaps - base.gaps
	res.Errors = now.errors - base.errors
	res.FailedConns = now.failed - base.failed
}

// counters are the metrics a phase of a run is measured between.
type counters struct {
	deliveries, dups, gaps, errors, failed int64
}

func snapshotCounters(m *metrics) counters {
	return counters{
		deliveries: m.deliveries.Load(), dups: m.dups.Load(), gaps: m.gaps.Load(),
		errors: m.errors.Load() + m.publishFailed.Load(), failed: m.connectFailed.Load(),
	}
}
