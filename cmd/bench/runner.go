package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"sync"
	"time"
)

// runner carries what the phases of one run share.
type runner struct {
	cfg     Config
	src     *sources
	rng     *rand.Rand
	run     uint32 // tags this run's payloads
	report  *Report
	tmpDir  string // holds the node binary, when the run builds one
	nodeBin string
}

func newRunner(cfg Config) *runner {
	seed := cfg.Seed
	return &runner{
		cfg:    cfg,
		src:    newSources(cfg.Sources, cfg.ConnectTimeout),
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		run:    rand.Uint32(),
		report: &Report{Scenario: cfg.Scenario, Target: cfg.URL, Started: time.Now(), Settings: settingsOf(cfg)},
	}
}

func settingsOf(cfg Config) Settings {
	s := Settings{
		SSE: cfg.SSE, WS: cfg.WS, Channels: cfg.Channels.String(), Ramp: cfg.Ramp,
		PublishRate: cfg.PublishRate, Payload: cfg.Payload, Via: cfg.Via,
		Duration: cfg.Duration.String(), Warmup: cfg.Warmup.String(), Sources: describeSources(cfg.Sources),
	}
	if cfg.Scenario == ScenarioResume {
		s.Behind = cfg.Behind
	}
	if cfg.streams() != transportSSE {
		s.Transport = cfg.streams()
	}
	if cfg.Scenario == ScenarioBurst {
		for _, b := range cfg.Bursts {
			s.Bursts = append(s.Bursts, b.String())
		}
		s.Rounds = cfg.Rounds
	}
	return s
}

// close removes what the run left behind.
func (r *runner) close() {
	r.src.close()
	if r.tmpDir != "" {
		os.RemoveAll(r.tmpDir)
	}
}

// note records a remark for the summary and prints it now.
func (r *runner) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.report.Notes = append(r.report.Notes, msg)
	fmt.Fprintln(r.cfg.Progress, "bench: "+msg)
}

// step prints progress between the per-second lines.
func (r *runner) step(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, "bench: "+format+"\n", args...)
}

// openNode returns the node to measure: the one -url names (with
// -node-pid's process), or a fresh one when -start-node is set. stop ends a
// node this call started.
func (r *runner) openNode(ctx context.Context) (base string, pid int, stop func(), err error) {
	return r.openNodeWith(ctx)
}

// openNodeWith is openNode passing extra flags to a node it starts.
func (r *runner) openNodeWith(ctx context.Context, extra ...string) (base string, pid int, stop func(), err error) {
	if !r.cfg.StartNode {
		return r.cfg.URL, r.cfg.NodePID, func() {}, nil
	}
	bin, err := r.nodeBinary(ctx)
	if err != nil {
		return "", 0, nil, err
	}
	n, err := startNode(ctx, bin, r.cfg.RedisURL, r.cfg.Prefix, extra...)
	if err != nil {
		return "", 0, nil, err
	}
	r.step("started a node on %s (pid %d)", n.url(), n.pid())
	r.report.Target = n.url() + " (started by the tool)"
	return n.url(), n.pid(), func() {
		if err := n.stop(); err != nil {
			r.note("the node exited with %v", err)
		}
	}, nil
}

// nodeBinary returns the node binary to start: -node-bin, or ./cmd/node
// built once per run.
func (r *runner) nodeBinary(ctx context.Context) (string, error) {
	if r.nodeBin == "" && r.cfg.NodeBin != "" {
		r.nodeBin = r.cfg.NodeBin
	}
	if r.nodeBin != "" {
		return r.nodeBin, nil
	}
	var err error
	if r.tmpDir, err = os.MkdirTemp("", "pushcluster-bench-"); err != nil {
		return "", err
	}
	r.step("building ./cmd/node")
	if r.nodeBin, err = buildNode(ctx, r.tmpDir); err != nil {
		return "", err
	}
	return r.nodeBin, nil
}

// phase is one set of clients against one server, with its own counters
// and progress line.
type phase struct {
	env   *runEnv
	fleet *fleet
	prog  *progress

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// newPhase prepares sse+ws clients of base spread by plan, and starts the
// progress line; the caller starts the fleet and must close the phase.
// The sse clients use -transport.
func (r *runner) newPhase(ctx context.Context, base string, sse, ws int, plan *channelPlan) (*phase, error) {
	return r.newPhaseOver(ctx, base, r.cfg.streams(), sse, ws, plan)
}

// newPhaseOver is newPhase with the sse clients over transport over.
func (r *runner) newPhaseOver(ctx context.Context, base, over string, sse, ws int, plan *channelPlan) (*phase, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("bench: bad target URL %q: %w", base, err)
	}
	m := &metrics{}
	env := &runEnv{cfg: r.cfg, target: newTarget(u, r.src), plan: plan, m: m, win: newWindow(), run: r.run}
	ph := &phase{env: env, fleet: newFleet(env, over, sse, ws, r.rng), prog: newProgress(m, r.cfg.Progress, sse+ws)}
	pctx, cancel := context.WithCancel(ctx)
	ph.cancel = cancel
	ph.wg.Go(func() { ph.prog.run(pctx) })
	return ph, nil
}

// close stops the clients and the progress line.
func (ph *phase) close() {
	ph.fleet.stop()
	ph.cancel()
	ph.wg.Wait()
}

// connReport summarizes connecting.
func (ph *phase) connReport() *ConnReport {
	m := ph.env.m
	return &ConnReport{
		Target: len(ph.fleet.clients), Established: m.established.Load(),
		Failed: m.connectFailed.Load(), ConnectMs: percentiles(m.connectTime.Snapshot()),
	}
}

// steady returns, over the clients subscribed since before start and never
// dropped since, how many window messages they should have received and
// how many (distinct) they did.
func (ph *phase) steady(start time.Time, sent []int64) (clients int, expected, received int64) {
	for _, c := range ph.fleet.clients {
		at := c.readyAt.Load()
		if at == 0 || at >= start.UnixNano() || c.dropped.Load() {
			continue
		}
		clients++
		expected += sent[c.channel]
		received += c.inWindow.Load()
	}
	return clients, expected, received
}

// usedChannels returns the channels that have at least one client.
func (ph *phase) usedChannels() []int {
	var used []int
	for ch, n := range ph.fleet.subscribers() {
		if n > 0 {
			used = append(used, ch)
		}
	}
	return used
}
