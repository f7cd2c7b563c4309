package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/backoff"
	"github.com/pushcluster/pushcluster/internal/hist"
	"github.com/pushcluster/pushcluster/internal/waitfor"
)

// drain is a lame-duck drain of the node every client is on: a cluster of
// nodes, the clients all on the first, messages published at a steady
// rate; then SIGTERM to the first while the clients reconnect round-robin
// to the others (as a load balancer does once /readyz fails) and resume
// from their last event ID. It runs with -drain-timeout, then again with
// -drain-baseline (all at once), so that the two storms can be compared.
func (r *runner) drain(ctx context.Context) error {
	timeouts := []time.Duration{r.cfg.DrainTimeout}
	if r.cfg.DrainBaseline > 0 {
		timeouts = append(timeouts, r.cfg.DrainBaseline)
	}
	for i, d := range timeouts {
		rep, err := r.drainRound(ctx, i+1, d, syscall.SIGTERM)
		if rep != nil {
			r.report.Drain = append(r.report.Drain, *rep)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// nodeKilled is the reconnect storm after a node dies: the drain's setting,
// every client on the first node, but SIGKILL in place of SIGTERM, so
// that every client finds its stream cut at once and reconnects, within
// its own backoff, to the others, resuming from its last event ID.
func (r *runner) nodeKilled(ctx context.Context) error {
	rep, err := r.drainRound(ctx, 1, r.cfg.DrainTimeout, syscall.SIGKILL)
	if rep != nil {
		r.report.Drain = append(r.report.Drain, *rep)
	}
	return err
}

// drainRound is one drain (or storm) on a fresh cluster, on channels of
// its own: sig is what the first node gets.
func (r *runner) drainRound(ctx context.Context, round int, timeout time.Duration, sig syscall.Signal) (*DrainReport, error) {
	cfg := r.cfg
	r.step("drain round %d: nodes with -drain-timeout %s", round, timeout)
	cl, err := r.startCluster(ctx, timeout)
	if err != nil {
		return nil, err
	}
	defer cl.stop()
	plan := newChannelPlan(cfg.Channels, fmt.Sprintf("%s-drain%d", cfg.ChannelBase, round))
	ph, err := r.newPhase(ctx, cl.nodes[0].url(), cfg.SSE, cfg.WS, plan)
	if err != nil {
		return nil, err
	}
	defer ph.close() // before the nodes stop, so that they have nothing to drain
	s, err := newSink(cfg, cl.nodes[len(cl.nodes)-1].url())
	if err != nil {
		return nil, err
	}
	defer s.close()
	rdb, err := adminClient(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	defer rdb.Close()
	pub := newPublisher(ph.env, s)
	w := newDrainWatch(ph, pub)
	used := ph.usedChannels()
	if err := r.connectAndReceive(ctx, ph, pub, used); err != nil {
		return nil, err
	}
	rep := &DrainReport{DrainTimeout: timeout.String(), Clients: len(ph.fleet.clients), Nodes: len(cl.nodes)}
	if sig == syscall.SIGKILL {
		rep.Signal = "SIGKILL"
	}
	pubCtx, stopPub := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { pub.run(pubCtx, cfg.PublishRate, r.rng, used) })
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopPub()
			wg.Wait()
		}
	}
	defer stop()
	err = r.drainAndResume(ctx, cl, ph, w, rdb, rep, sig)
	stop()
	if err != nil {
		return rep, err
	}
	r.drainCompleteness(ctx, ph, pub, w, rep)
	return rep, nil
}

// drainAndResume measures the steady Redis reads and the other nodes'
// idle CPU over the warm-up, sends sig to the first node, and waits for
// every client to resume.
func (r *runner) drainAndResume(ctx context.Context, cl *nodeCluster, ph *phase, w *drainWatch, rdb *redis.Client, rep *DrainReport, sig syscall.Signal) error {
	cfg := r.cfg
	r.step("publishing %g msg/s for %s with every client on node %s", cfg.PublishRate, cfg.Warmup, cl.names[0])
	before, err := readRedisStats(ctx, rdb)
	if err != nil {
		return err
	}
	others := cl.pids()[1:]
	idle, err := idleCPU(ctx, others, min(cfg.Warmup, presenceIdleCPU))
	if err != nil {
		return err
	}
	backoff.Sleep(ctx, cfg.Warmup-min(cfg.Warmup, presenceIdleCPU))
	atTerm, err := readRedisStats(ctx, rdb)
	if err != nil {
		return err
	}
	failed := ph.env.m.connectFailed.Load()
	var bases []*url.URL
	for _, n := range cl.nodes[1:] {
		u, _ := url.Parse(n.url())
		bases = append(bases, u)
	}
	meters := make([]*cpuMeter, len(others))
	for i, pid := range others {
		if meters[i], err = startCPU(pid); err != nil {
			return err
		}
	}
	ph.env.target.route(bases...)
	t0 := w.arm()
	if err := cl.nodes[0].cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("bench: failed to signal node %s: %w", cl.names[0], err)
	}
	r.step("%s to node %s; clients reconnect round-robin to the other %d", rep.signal(), cl.names[0], len(bases))
	want := int64(len(ph.fleet.clients))
	if err := waitfor.Until(ctx, cfg.CatchupTimeout, 2*time.Millisecond, func() bool { return w.done.Load() >= want }); err != nil {
		r.note("drain %s: %d of %d clients resumed within %s", rep.DrainTimeout, w.done.Load(), want, cfg.CatchupTimeout)
	}
	after, err := readRedisStats(ctx, rdb)
	if err != nil {
		return err
	}
	elapsed := time.Since(t0).Seconds()
	for i, m := range meters {
		used, err := m.used()
		if err != nil {
			return err
		}
		rep.SurvivorCPUMs += (used.Seconds() - idle[i]*elapsed) * 1e3
	}
	rep.FailedConns = ph.env.m.connectFailed.Load() - failed
	w.fill(rep, t0)
	if rep.Resumed > 0 {
		rep.SurvivorCPUUsPerResume = rep.SurvivorCPUMs * 1e3 / float64(rep.Resumed)
	}
	rep.Redis = redisWindow(before, atTerm, after, rep)
	select {
	case <-cl.nodes[0].done:
	case <-time.After(childStopTimeout + r.cfg.DrainTimeout):
	}
	if n := cl.nodes[0]; !n.exited.IsZero() {
		rep.ExitMs = ms(n.exited.Sub(t0).Nanoseconds())
	}
	return nil
}

// drainCompleteness waits up to the drain time for every client to have the
// newest message of its channel, and counts what is missing, repeated or
// skipped. The publisher must have stopped.
func (r *runner) drainCompleteness(ctx context.Context, ph *phase, pub *publisher, w *drainWatch, rep *DrainReport) {
	missing := func() int64 {
		var n int64
		for _, c := range ph.fleet.clients {
			n += max(int64(pub.newest[c.channel].Load())-int64(w.last[c.i].Load()), 0)
		}
		return n
	}
	if err := waitfor.Until(ctx, r.cfg.Drain, 10*time.Millisecond, func() bool { return missing() == 0 }); err != nil && ctx.Err() == nil {
		r.note("drain %s: messages still missing %s after publishing stopped", rep.DrainTimeout, r.cfg.Drain)
	}
	m := ph.env.m
	rep.Published = m.published.Load()
	rep.PublishFailed = m.publishFailed.Load()
	rep.Missing = missing()
	rep.Skipped, rep.Duplicates = m.holes.Load(), m.dups.Load()
	rep.Gaps, rep.Errors, rep.Foreign = m.gaps.Load(), m.errors.Load(), m.foreign.Load()
	rep.EarlyEnds = w.early.Load()
}

// adminClient connects to Redis for INFO.
func adminClient(redisURL string) (*redis.Client, error) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("bench: bad -redis-url: %w", err)
	}
	opt.PoolSize, opt.ClientName = 1, "pushcluster-bench-admin"
	return redis.NewClient(opt), nil
}

// redisWindow accounts Redis's reads from the SIGTERM until every client
// resumed. Live delivery reads too: each node watching a channel reads it
// after every XADD. Its rate per node is measured before the SIGTERM, when
// one node held every client, and charged for the time each node watched:
// the drained one until its last stream ended, the others from the first
// reconnect on. What is left is what resuming cost.
func redisWindow(before, atTerm, after redisStats, rep *DrainReport) RedisWindow {
	steady := atTerm.at.Sub(before.at).Seconds()
	win := after.at.Sub(atTerm.at)
	rw := RedisWindow{
		WindowMs: ms(win.Nanoseconds()),
		XRange:   after.since(atTerm, "xrange"), XRevRange: after.since(atTerm, "xrevrange"),
		XRead: after.since(atTerm, "xread"), XInfo: after.since(atTerm, "xinfo|stream"),
		XAdd:  after.since(atTerm, "xadd"),
		CPUMs: ms((after.cpu - atTerm.cpu).Nanoseconds()),
	}
	if steady > 0 {
		rw.SteadyXRangePerSec = float64(atTerm.since(before, "xrange")) / steady
	}
	watched := rep.SpreadMs/1000 + float64(rep.Nodes-1)*max(win.Seconds()-rep.FirstReconnectMs/1000, 0)
	rw.LiveEstimate = rw.SteadyXRangePerSec * watched
	rw.ResumeReads = float64(rw.XRange) - rw.LiveEstimate
	if rep.Resumed > 0 {
		rw.ReadsPerClient = rw.ResumeReads / float64(rep.Resumed)
	}
	return rw
}

// drainWatch follows every client through a drain: when its stream from
// the drained node ended, when it subscribed again elsewhere, and when it
// had caught up with everything published before that. Its hooks run on
// the clients' goroutines; each touches only its own client's slots.
// resumeBound is how long after its own backoff a client that lost its
// node should have resumed (issue 21: its backoff plus 2 s).
const resumeBound = 2 * time.Second

type drainWatch struct {
	pub     *publisher
	armedAt atomic.Int64 // Unix nanos of the SIGTERM; 0 before

	ended, ready, resumed []atomic.Int64  // per client, Unix nanos; 0 until then
	waited                []atomic.Int64  // per client: nanos of its own backoff before it resumed
	last                  []atomic.Uint64 // per client: the newest sequence number received
	target                []uint64        // per client: caught up at this sequence number

	early atomic.Int64 // streams that ended before the SIGTERM
	done  atomic.Int64 // clients resumed
}

func newDrainWatch(ph *phase, pub *publisher) *drainWatch {
	n := len(ph.fleet.clients)
	w := &drainWatch{pub: pub, ended: make([]atomic.Int64, n), ready: make([]atomic.Int64, n),
		resumed: make([]atomic.Int64, n), waited: make([]atomic.Int64, n), last: make([]atomic.Uint64, n), target: make([]uint64, n)}
	ph.env.onEnd, ph.env.onReady, ph.env.onMessage = w.onEnd, w.onReady, w.onMessage
	return w
}

// arm marks the SIGTERM: from now on ends and subscriptions count.
func (w *drainWatch) arm() time.Time {
	now := time.Now()
	w.armedAt.Store(now.UnixNano())
	return now
}

func (w *drainWatch) onEnd(c *client, now time.Time) {
	switch {
	case w.armedAt.Load() == 0:
		w.early.Add(1)
	case w.ended[c.i].Load() == 0:
		w.ended[c.i].Store(now.UnixNano())
	}
}

func (w *drainWatch) onReady(c *client, now time.Time) {
	if w.armedAt.Load() == 0 || w.ready[c.i].Load() != 0 {
		return
	}
	w.target[c.i] = w.pub.newest[c.channel].Load()
	w.ready[c.i].Store(now.UnixNano())
	if w.last[c.i].Load() >= w.target[c.i] {
		w.resume(c, now)
	}
}

func (w *drainWatch) onMessage(c *client, st stamp, now time.Time) {
	w.last[c.i].Store(st.Seq)
	if w.ready[c.i].Load() != 0 && w.resumed[c.i].Load() == 0 && st.Seq >= w.target[c.i] {
		w.resume(c, now)
	}
}

func (w *drainWatch) resume(c *client, now time.Time) {
	w.waited[c.i].Store(c.waited.Load())
	w.resumed[c.i].Store(now.UnixNano())
	w.done.Add(1)
}

// fill writes the drain's timings, relative to the SIGTERM at t0.
func (w *drainWatch) fill(rep *DrainReport, t0 time.Time) {
	var closes, reconnects []time.Duration
	var resume, outage, beyond hist.Histogram
	since := func(ns int64) time.Duration { return time.Duration(ns - t0.UnixNano()) }
	for i := range w.ended {
		end, ready, res := w.ended[i].Load(), w.ready[i].Load(), w.resumed[i].Load()
		if end != 0 {
			closes = append(closes, since(end))
		}
		if ready != 0 {
			reconnects = append(reconnects, since(ready))
		}
		if res != 0 {
			rep.Resumed++
			resume.Record(since(res).Nanoseconds())
			rep.AllResumedMs = max(rep.AllResumedMs, ms(since(res).Nanoseconds()))
			if end != 0 {
				outage.Record(res - end)
				over := res - end - w.waited[i].Load()
				beyond.Record(over)
				if over <= resumeBound.Nanoseconds() {
					rep.WithinBackoffBound++
				}
			}
		}
	}
	rep.Closed, rep.Reconnected = len(closes), len(reconnects)
	if len(closes) > 0 {
		rep.FirstCloseMs, rep.SpreadMs = ms(slices.Min(closes).Nanoseconds()), ms(slices.Max(closes).Nanoseconds())
	}
	if len(reconnects) > 0 {
		rep.FirstReconnectMs = ms(slices.Min(reconnects).Nanoseconds())
	}
	rep.PeakClosesPerSec = maxInWindow(closes, time.Second)
	rep.PeakReconnectsPerSec = maxInWindow(reconnects, time.Second)
	rep.PeakReconnectsPer100ms = maxInWindow(reconnects, 100*time.Millisecond)
	rep.ReconnectsPerSec = perInterval(reconnects, time.Second)
	rep.ResumeMs = percentiles(resume.Snapshot())
	rep.OutageMs = percentiles(outage.Snapshot())
	rep.BeyondBackoffMs = percentiles(beyond.Snapshot())
}
