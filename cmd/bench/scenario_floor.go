package main

import (
	"context"
	"sync"
	"time"

	"github.com/pushcluster/pushcluster/internal/backoff"
)

// fanoutFloor compares the node's CPU per delivered message with a bare
// write loop's (floor-server, a child of this tool): the same number of SSE
// subscribers, the same messages at the same rate, CPU from /proc.
func (r *runner) fanoutFloor(ctx context.Context) error {
	cfg := r.cfg
	if cfg.WS > 0 {
		r.note("fanout-floor uses %d SSE subscribers; -ws is ignored", cfg.SSE)
	}
	rep := &FloorReport{Subscribers: cfg.SSE}
	r.report.Floor = rep
	fl, err := startSelf("floor-server")
	if err != nil {
		return err
	}
	r.step("floor: a bare write loop on %s (pid %d)", fl.url(), fl.pid())
	rep.Floor, err = r.measureFanout(ctx, fl.url(), fl.pid(), &floorSink{w: fl.stdin})
	if serr := fl.stop(); err == nil && serr != nil {
		r.note("floor-server exited with %v", serr)
	}
	if err != nil {
		return err
	}
	base, pid, stopNode, err := r.openNode(ctx)
	if err != nil {
		return err
	}
	defer stopNode()
	s, err := newSink(cfg, base)
	if err != nil {
		return err
	}
	defer s.close()
	r.step("node: %s (pid %d)", base, pid)
	if rep.Node, err = r.measureFanout(ctx, base, pid, s); err != nil {
		return err
	}
	rep.Ratio = ratio(rep.Node.CPUUsPerDelivery, rep.Floor.CPUUsPerDelivery)
	if cfg.streams() == transportPoll {
		r.step("node: the same subscribers long-polling")
		p, err := r.measureFanoutOver(ctx, base, pid, s, transportPoll)
		if err != nil {
			return err
		}
		rep.Poll, rep.PollRatio = &p, ratio(p.CPUUsPerDelivery, rep.Node.CPUUsPerDelivery)
	}
	return nil
}

// measureFanout subscribes the SSE clients to one channel of base, then
// publishes through s for the window and measures pid's CPU until every
// message has been delivered (or the drain time has passed).
func (r *runner) measureFanout(ctx context.Context, base string, pid int, s sink) (FloorSide, error) {
	return r.measureFanoutOver(ctx, base, pid, s, transportSSE)
}

// measureFanoutOver is measureFanout with the clients over transport over.
func (r *runner) measureFanoutOver(ctx context.Context, base string, pid int, s sink, over string) (FloorSide, error) {
	cfg := r.cfg
	side := FloorSide{PID: pid}
	ph, err := r.newPhaseOver(ctx, base, over, cfg.SSE, 0, newChannelPlan(ChannelSpec{Mode: ModeHot}, cfg.ChannelBase+"-floor-"+over))
	if err != nil {
		return side, err
	}
	defer ph.close()
	ph.fleet.start(ctx, cfg.Ramp)
	if err := ph.fleet.waitReady(ctx, cfg.ReadyTimeout); err != nil {
		return side, err
	}
	backoff.Sleep(ctx, time.Second) // let connection set-up work finish before measuring
	pub := newPublisher(ph.env, s)
	pubCtx, stopPub := context.WithCancel(ctx)
	var wg sync.WaitGroup
	begin := func() { wg.Go(func() { pub.run(pubCtx, cfg.PublishRate, r.rng, nil) }) }
	w, err := r.measureWindow(ctx, ph, pid, pub, begin, func() { stopPub(); wg.Wait() })
	if err != nil {
		return side, err
	}
	_, side.Expected, _ = ph.steady(w.start, w.sent)
	for _, n := range w.sent {
		side.Messages += n
	}
	side.Deliveries = w.deliveredAfter
	side.CPUSeconds = w.cpu.Seconds()
	side.CPUUsPerDelivery = ratio(float64(w.cpu.Nanoseconds())/1e3, float64(w.deliveredAfter))
	side.LatencyMs = percentiles(ph.env.m.latency.Snapshot())
	if side.Deliveries < side.Expected {
		r.note("pid %d fell behind: %d of %d delivered by the end of the drain, so its CPU per delivery is at saturation; lower -publish-rate",
			pid, side.Deliveries, side.Expected)
	}
	return side, nil
}
