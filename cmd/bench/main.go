// Command bench load-tests a pushcluster deployment the way issue #3 judges
// a push server: connections held per gigabyte, CPU per delivered message,
// and tail latency under fan-out and reconnect storms.
//
// Scenarios (-scenario):
//
//	load          clients at a ramp, a publish rate, publish→receive latency,
//	              loss and duplicates over a measured window (the default)
//	resume        a reconnect storm: everyone away while -behind messages per
//	              channel are published, then back at once from Last-Event-ID
//	              (SSE) or since (WebSocket); per-client catch-up time
//	fanout-floor  node CPU per delivered message against a bare write loop
//	              holding as many SSE connections (a child of this tool)
//	idle-memory   node RSS per idle connection against bare servers
//	drain         three clustered nodes; SIGTERM the one everyone is on and
//	              time the paced drain against an all-at-once one
//	presence      three clustered nodes; cluster-wide presence and client
//	              list queries: latency, size, CPU per query
//	burst         one pipelined burst of XADDs to every subscriber of a
//	              channel, the node against a bare relay (burst-relay):
//	              peak RSS growth, time to deliver, CPU per delivery
//
// Examples, with a node on :6788 and Redis on :6379:
//
//	go run ./cmd/bench -redis-url redis://127.0.0.1:6379/0 -sse 2000 -ws 2000 -channels many:100
//	go run ./cmd/bench -redis-url redis://127.0.0.1:6379/0 -scenario resume -sse 500 -behind 100
//	go run ./cmd/bench -redis-url redis://127.0.0.1:6379/0 -scenario fanout-floor -sse 1000 -start-node
//	go run ./cmd/bench -redis-url redis://127.0.0.1:6379/0 -scenario idle-memory -sse 2000 -ws 2000 -start-node
//	go run ./cmd/bench -redis-url redis://127.0.0.1:6379/0 -scenario drain -sse 2500 -ws 2500 -channels many:4 -publish-rate 20
//	go run ./cmd/bench -redis-url redis://127.0.0.1:6379/0 -scenario presence -sse 5000 -ws 5000 -steps 1000
//	go run ./cmd/bench -redis-url redis://127.0.0.1:6379/0 -scenario burst -sse 2000 -ws 2000 -start-node -rounds 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Hidden subcommands: the baselines run as children of the tool, so their
// CPU and memory are their own.
var subcommands = map[string]func(args []string) error{
	"floor-server":       runFloorServer,
	"ws-baseline-server": runWSBaselineServer,
	"burst-relay":        runBurstRelay,
}

func main() {
	if len(os.Args) > 1 {
		if sub, ok := subcommands[os.Args[1]]; ok {
			signal.Ignore(syscall.SIGINT) // the parent stops it
			if err := sub(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, os.Args[1]+":", err)
				os.Exit(1)
			}
			return
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err == nil {
		err = run(ctx, cfg, os.Stdout)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run measures cfg's scenario and writes the summary to out (and the JSON
// and SVG files cfg names).
func run(ctx context.Context, cfg Config, out io.Writer) error {
	r := newRunner(cfg)
	defer r.close()
	msg, err := raiseFileLimit()
	if err != nil {
		return err
	}
	r.note("%s", msg)
	if need := uint64(cfg.clients()) + 64; fileLimit() < need {
		r.note("RLIMIT_NOFILE %d is below the %d files this run needs", fileLimit(), need)
	}
	scenarios := map[string]func(context.Context) error{
		ScenarioLoad: r.load, ScenarioResume: r.resume,
		ScenarioFanoutFloor: r.fanoutFloor, ScenarioIdleMemory: r.idleMemory,
		ScenarioDrain: r.drain, ScenarioStorm: r.nodeKilled, ScenarioPresence: r.presence,
		ScenarioBurst:   r.burst,
		ScenarioConnect: r.connectCost,
	}
	runErr := scenarios[cfg.Scenario](ctx)
	if runErr != nil {
		r.note("run failed: %v", runErr)
	}
	if err := r.writeOutputs(out); err != nil {
		return errors.Join(runErr, err)
	}
	return runErr
}

// writeOutputs writes the table, and the JSON and SVG files if asked.
func (r *runner) writeOutputs(out io.Writer) error {
	table := out
	if r.cfg.JSONPath == "-" {
		table = r.cfg.Progress
	}
	if err := r.report.writeTable(table); err != nil {
		return err
	}
	if r.cfg.JSONPath != "" {
		if err := writeFileOr(r.cfg.JSONPath, out, r.report.writeJSON); err != nil {
			return fmt.Errorf("bench: failed to write JSON: %w", err)
		}
	}
	if r.cfg.PlotPath != "" {
		title := fmt.Sprintf("pushcluster bench %s: %d SSE + %d WS, %s, %g msg/s", r.cfg.Scenario, r.cfg.SSE, r.cfg.WS, r.cfg.Channels.String(), r.cfg.PublishRate)
		write := func(w io.Writer) error { return writeSVG(w, title, r.report.Timeline) }
		if err := writeFileOr(r.cfg.PlotPath, out, write); err != nil {
			return fmt.Errorf("bench: failed to write the plot: %w", err)
		}
	}
	return nil
}

// writeFileOr writes to path, or to stdout when path is "-".
func writeFileOr(path string, stdout io.Writer, write func(io.Writer) error) (err error) {
	if path == "-" {
		return write(stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	return write(f)
}
