package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/backoff"
	"github.com/pushcluster/pushcluster/internal/waitfor"
)

// burstMaxLenSlack is added to a burst's size in its XADDs' MAXLEN, so
// trimming never removes an entry of the burst a subscriber may still need.
const burstMaxLenSlack = 1000

// burst is issue 11's scenario: a whole burst published at once to every
// subscriber of one channel, on the node and on the bare relay, one after
// the other, for each transport and burst shape, Rounds times.
func (r *runner) burst(ctx context.Context) error {
	if r.cfg.StartNode {
		r.note("the node and the bare relay are started afresh for every row and round, so each rests from a clean start")
	} else {
		r.note("the node is not restarted between rows (no -start-node): its resting RSS holds what earlier rows left")
	}
	opt, err := redis.ParseURL(r.cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("bench: bad -redis-url: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	for _, t := range []struct {
		transport string
		n         int
	}{{transportSSE, r.cfg.SSE}, {transportWS, r.cfg.WS}} {
		if t.n == 0 {
			continue
		}
		for _, shape := range r.cfg.Bursts {
			if err := r.burstRow(ctx, rdb, t.transport, t.n, shape); err != nil {
				return err
			}
		}
	}
	return nil
}

// burstRow measures one row's rounds and adds the row to the report, as
// far as it got when a round fails.
func (r *runner) burstRow(ctx context.Context, rdb *redis.Client, transport string, n int, shape BurstShape) error {
	row := BurstRow{Transport: transport, Subscribers: n, Burst: shape}
	defer func() {
		row.summarize()
		r.report.Bursts = append(r.report.Bursts, row)
	}()
	for round := range r.cfg.Rounds {
		job := burstJob{transport: transport, n: n, shape: shape, round: round}
		node, err := r.burstOnNode(ctx, rdb, job)
		if err != nil {
			return err
		}
		bare, err := r.burstOnBare(ctx, rdb, job)
		if err != nil {
			return err
		}
		row.Rounds = append(row.Rounds, BurstRound{Node: node, Bare: bare})
	}
	return nil
}

// burstJob is one round of one row.
type burstJob struct {
	transport string
	n         int
	shape     BurstShape
	round     int
}

// channel names the job's channel on side, unique to the run so that no
// two measurements share a stream.
func (j burstJob) channel(base string, run uint32, side string) string {
	return fmt.Sprintf("%s-burst-%08x-%s%d-%s-r%d-%s", base, run, j.transport, j.n, j.shape, j.round+1, side)
}

func (r *runner) burstOnNode(ctx context.Context, rdb *redis.Client, job burstJob) (BurstSample, error) {
	var extra []string
	prof := &nodeProfiles{dir: r.cfg.ProfileDir}
	if prof.dir != "" {
		addr, err := freeAddr("127.0.0.1")
		if err != nil {
			return BurstSample{}, err
		}
		prof.addr, prof.name = addr, fmt.Sprintf("%s%d-%s-r%d", job.transport, job.n, job.shape, job.round+1)
		extra = []string{"-debug-listen", addr}
	}
	base, pid, stop, err := r.openNodeWith(ctx, extra...)
	if err != nil {
		return BurstSample{}, err
	}
	defer stop()
	return r.burstSide(ctx, rdb, base, pid, job, job.channel(r.cfg.ChannelBase, r.run, "node"), prof)
}

func (r *runner) burstOnBare(ctx context.Context, rdb *redis.Client, job burstJob) (BurstSample, error) {
	channel := job.channel(r.cfg.ChannelBase, r.run, "bare")
	b, err := startSelf("burst-relay", "-redis-url", r.cfg.RedisURL, "-stream", r.cfg.Prefix+channel, "-channel", channel)
	if err != nil {
		return BurstSample{}, err
	}
	s, err := r.burstSide(ctx, rdb, b.url(), b.pid(), job, channel, nil)
	if serr := b.stop(); err == nil && serr != nil {
		r.note("burst-relay exited with %v", serr)
	}
	return s, err
}

// burstSide subscribes the job's clients to channel on base, lets them
// settle, then publishes the burst and waits until every subscriber has
// its last entry, measuring pid meanwhile.
func (r *runner) burstSide(ctx context.Context, rdb *redis.Client, base string, pid int, job burstJob, channel string, prof *nodeProfiles) (BurstSample, error) {
	s := BurstSample{PID: pid, Expected: int64(job.n) * int64(job.shape.Count)}
	stream := r.cfg.Prefix + channel
	defer rdb.Del(context.WithoutCancel(ctx), stream) // after the clients have gone
	sse, ws := job.n, 0
	if job.transport == transportWS {
		sse, ws = 0, job.n
	}
	ph, err := r.newPhase(ctx, base, sse, ws, &channelPlan{spec: ChannelSpec{Mode: ModeHot, N: 1}, names: []string{channel}})
	if err != nil {
		return s, err
	}
	defer ph.close()
	tr := newBurstTracker(job.n, job.shape.Count)
	ph.env.onMessage = tr.onMessage
	r.step("%s: %d %s subscribers to %s (pid %d), then %d × %d B", channel, job.n, job.transport, base, pid, job.shape.Count, job.shape.Bytes)
	ph.fleet.start(ctx, r.cfg.Ramp)
	if err := ph.fleet.waitReady(ctx, r.cfg.ReadyTimeout); err != nil {
		return s, err
	}
	backoff.Sleep(ctx, r.cfg.Settle)
	if err := prof.save(ctx, "before"); err != nil {
		r.note("%v", err)
	}
	pipe := burstPipeline(ctx, rdb, stream, r.run, job.shape)
	if err := r.measureBurst(ctx, &s, pipe, tr, ph.env.m); err != nil {
		return s, err
	}
	if err := prof.save(ctx, "after"); err != nil {
		r.note("%v", err)
	}
	if s.TimedOut {
		r.note("%s: %d of %d subscribers had the whole burst within %s", channel, s.Complete, job.n, r.cfg.CatchupTimeout)
	}
	return s, nil
}

// measureBurst sends the queued burst and waits for every subscriber to
// have it: the process's resting RSS before, its peak, CPU and the time.
func (r *runner) measureBurst(ctx context.Context, s *BurstSample, pipe redis.Pipeliner, tr *burstTracker, m *metrics) (err error) {
	before := burstCountersOf(m)
	if s.RestingBytes, err = processRSS(s.PID); err != nil {
		return err
	}
	hwm := resetPeakRSS(s.PID) == nil
	if !hwm {
		r.note("pid %d: VmHWM could not be reset; its peak is VmRSS sampled every %s", s.PID, peakSampleEvery)
	}
	cpu, err := startCPU(s.PID)
	if err != nil {
		return err
	}
	sampler := startRSSSampler(ctx, s.PID)
	start := time.Now()
	if _, err := pipe.Exec(ctx); err != nil {
		sampler.stop()
		return fmt.Errorf("bench: failed to publish the burst: %w", err)
	}
	waitErr := waitfor.Until(ctx, r.cfg.CatchupTimeout, 2*time.Millisecond, func() bool { return tr.complete.Load() >= int64(len(tr.got)) })
	end := time.Now()
	used, err := cpu.used()
	s.SampledBytes = sampler.stop()
	if err != nil {
		return err
	}
	if hwm {
		s.HWMBytes, _ = processPeakRSS(s.PID)
	}
	s.GrowthBytes = max(s.HWMBytes, s.SampledBytes) - s.RestingBytes
	s.TimedOut = waitErr != nil
	s.DeliverMs = ms(tr.lastAt.Load() - start.UnixNano())
	if s.TimedOut {
		s.DeliverMs = ms(end.Sub(start).Nanoseconds())
	}
	tr.fill(s, before.since(m))
	// Per entry delivered: N × entries when the burst is complete, and
	// still a cost per delivery when the timeout cut it short.
	s.CPUSeconds = used.Seconds()
	s.CPUUsPerDelivery = ratio(float64(used.Nanoseconds())/1e3, float64(s.Delivered))
	return nil
}

// burstPipeline queues the burst's XADDs, stamped with sequence numbers
// 1…Count so the clients check order, ready to be sent as one batch.
func burstPipeline(ctx context.Context, rdb *redis.Client, stream string, run uint32, shape BurstShape) redis.Pipeliner {
	pipe := rdb.Pipeline()
	now := time.Now().UnixNano()
	for seq := 1; seq <= shape.Count; seq++ {
		data := appendPayload(make([]byte, 0, shape.Bytes), stamp{Run: run, Seq: uint64(seq), Sent: now}, shape.Bytes)
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, MaxLen: int64(shape.Count + burstMaxLenSlack), Approx: true, Values: []any{"data", data}})
	}
	return pipe
}

// burstTracker sees a burst arrive: per subscriber how many entries came
// in order, and when the last subscriber got the last entry.
type burstTracker struct {
	last     uint64
	got      []atomic.Int64 // by client index
	complete atomic.Int64   // subscribers that got the last entry
	lastAt   atomic.Int64   // Unix nanos of the latest of those
}

func newBurstTracker(subscribers, entries int) *burstTracker {
	return &burstTracker{last: uint64(entries), got: make([]atomic.Int64, subscribers)}
}

// onMessage is the run's onMessage hook: the client has already counted
// duplicates and skips, so this sees each entry once, in order.
func (t *burstTracker) onMessage(c *client, st stamp, now time.Time) {
	t.got[c.i].Add(1)
	if st.Seq != t.last {
		return
	}
	t.complete.Add(1)
	storeMax(&t.lastAt, now.UnixNano())
}

// storeMax raises v to n unless it is already larger.
func storeMax(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// fill sets the delivery counts of s from the tracker and the clients'
// counters over the burst.
func (t *burstTracker) fill(s *BurstSample, c burstCounters) {
	for i := range t.got {
		s.Delivered += t.got[i].Load()
	}
	s.Complete = int(t.complete.Load())
	s.Missing = max(s.Expected-s.Delivered, 0)
	s.Duplicates, s.Skips, s.Gaps, s.Errors, s.Foreign, s.Reconnects = c.dups, c.holes, c.gaps, c.errors, c.foreign, c.reconnects
}

// burstCounters are the clients' trouble counters at one moment.
type burstCounters struct {
	dups, holes, gaps, errors, foreign, reconnects int64
}

func burstCountersOf(m *metrics) burstCounters {
	return burstCounters{
		dups: m.dups.Load(), holes: m.holes.Load(), gaps: m.gaps.Load(),
		errors: m.errors.Load(), foreign: m.foreign.Load(), reconnects: m.reconnects.Load(),
	}
}

// since returns what the counters of m grew by after c.
func (c burstCounters) since(m *metrics) burstCounters {
	now := burstCountersOf(m)
	return burstCounters{
		dups: now.dups - c.dups, holes: now.holes - c.holes, gaps: now.gaps - c.gaps,
		errors: now.errors - c.errors, foreign: now.foreign - c.foreign, reconnects: now.reconnects - c.reconnects,
	}
}

// nodeProfiles saves a started node's heap and allocs profiles, so that
// `go tool pprof -base <before> <after>` shows what a burst allocated. A
// nil one, or one without an address, saves nothing.
type nodeProfiles struct {
	dir, addr, name string
}

func (p *nodeProfiles) save(ctx context.Context, when string) error {
	if p == nil || p.addr == "" {
		return nil
	}
	for _, kind := range []string{"heap", "allocs"} {
		path := filepath.Join(p.dir, fmt.Sprintf("%s-%s.%s", p.name, when, kind))
		if err := fetchProfile(ctx, "http://"+p.addr+"/debug/pprof/"+kind, path); err != nil {
			return fmt.Errorf("bench: failed to save the node's %s profile: %w", kind, err)
		}
	}
	return nil
}

func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
