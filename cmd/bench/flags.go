package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

// parseFlags reads the command line into a Config.
func parseFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := Config{Channels: ChannelSpec{Mode: ModeHot, N: 1}}
	var ramp, sourceSpec, nodeIPs, steps, bursts string
	var verbose bool
	fs.StringVar(&cfg.Scenario, "scenario", ScenarioLoad, "load, resume, fanout-floor, idle-memory, drain, storm, presence, burst or connect")
	fs.StringVar(&cfg.URL, "url", DefaultURL, "the node's base URL")
	fs.StringVar(&cfg.RedisURL, "redis-url", "", "Redis for -via xadd and for -start-node, redis://host:port/db")
	fs.StringVar(&cfg.Prefix, "prefix", DefaultPrefix, "stream key prefix: channel C is the stream <prefix>C")
	fs.IntVar(&cfg.SSE, "sse", 100, "SSE clients (fan-out subscribers in fanout-floor)")
	fs.IntVar(&cfg.WS, "ws", 0, "WebSocket clients")
	fs.StringVar(&cfg.Transport, "transport", transportSSE, "how the -sse clients connect: sse, or poll (long polling; fanout-floor and idle-memory then measure SSE too, in the same run)")
	fs.StringVar(&ramp, "ramp", fmt.Sprintf("%g/s", DefaultRamp), "connections opened per second, e.g. 500/s (0: all at once)")
	fs.Var(&cfg.Channels, "channels", "hot (everyone on <base>-hot), many:N (client i on channel i mod N) or skewed:N (Zipf over N channels); default hot")
	fs.StringVar(&cfg.ChannelBase, "channel-base", DefaultChannelBase, "channel names: <base>-hot, <base>-0, <base>-1, …")
	fs.Float64Var(&cfg.PublishRate, "publish-rate", DefaultPublishRate, "messages per second over all channels, each to a channel drawn like the clients'")
	fs.IntVar(&cfg.Payload, "payload", DefaultPayload, "message data bytes (at least the timestamp and sequence header, ~40 B)")
	fs.StringVar(&cfg.Via, "via", ViaXADD, "publish with xadd (Redis, needs -redis-url) or http (POST /api/publish)")
	fs.Int64Var(&cfg.MaxLen, "max-len", DefaultMaxLen, "XADD MAXLEN ~ N on every XADD (0: no trimming)")
	fs.IntVar(&cfg.PublishWorkers, "publish-workers", DefaultPublishWorkers, "concurrent publishers; a channel always uses the same one, keeping its order")
	fs.DurationVar(&cfg.Duration, "duration", DefaultDuration, "measured window")
	fs.DurationVar(&cfg.Warmup, "warmup", DefaultWarmup, "publishing before the window, not measured (drain: before the SIGTERM, the steady Redis read rate)")
	fs.DurationVar(&cfg.Drain, "drain", DefaultDrain, "longest wait after the window (drain: after publishing stops) for its messages to arrive")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", DefaultConnectTimeout, "one connection attempt, up to its subscription")
	fs.DurationVar(&cfg.ReadyTimeout, "ready-timeout", DefaultReadyTimeout, "longest wait for every client to subscribe")
	fs.StringVar(&sourceSpec, "source-ips", "auto", "local addresses to connect from, round-robin: auto ("+DefaultLocalSources+" for a loopback target), none, or a list of addresses and ranges a-b")
	fs.IntVar(&cfg.Behind, "behind", DefaultBehind, "resume: messages per channel published while the clients are away")
	fs.DurationVar(&cfg.CatchupTimeout, "catchup-timeout", DefaultCatchupTimeout, "resume, drain, burst: longest wait for every client to catch up (burst: to receive the whole burst)")
	fs.DurationVar(&cfg.Settle, "settle", DefaultSettle, "idle-memory, presence, burst: wait after the last connection before measuring")
	fs.IntVar(&cfg.NodePID, "node-pid", 0, "the node's process ID, for CPU and RSS from /proc (required by fanout-floor and idle-memory unless -start-node)")
	fs.BoolVar(&cfg.StartNode, "start-node", false, "build ./cmd/node (run from the repository root) and run it on a free loopback port with -redis-url, instead of -url")
	fs.StringVar(&cfg.NodeBin, "node-bin", "", "with -start-node: run this node binary instead of building ./cmd/node")
	fs.StringVar(&nodeIPs, "node-ips", DefaultNodeIPs, "drain, storm, presence: loopback addresses of the nodes to start, one each (list or range a-b); the first is drained or asked")
	fs.IntVar(&cfg.GossipPort, "gossip-port", DefaultGossipPort, "drain, storm, presence: the nodes' -cluster-bind port")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", DefaultDrainTimeout, "drain: the nodes' -drain-timeout")
	fs.DurationVar(&cfg.DrainBaseline, "drain-baseline", DefaultDrainBaseline, "drain: then the same run with this -drain-timeout (all at once), side by side; 0: skip")
	fs.IntVar(&cfg.Queries, "queries", DefaultQueries, "presence: times each question is asked")
	fs.StringVar(&steps, "steps", "", "presence: also measure at these client counts on the way up, e.g. 1000,5000")
	fs.StringVar(&bursts, "bursts", DefaultBursts, "burst: shapes COUNTxBYTES, comma-separated, each published as one pipelined XADD batch")
	fs.IntVar(&cfg.Rounds, "rounds", DefaultRounds, "burst, connect: measure each row this many times (connect: the variants alternating); the table shows medians and min–max")
	fs.StringVar(&cfg.ProfileDir, "profile-dir", "", "burst, with -start-node: save the node's heap and allocs profiles from just before and after each burst here")
	fs.StringVar(&cfg.JSONPath, "json", "", "also write the summary as JSON to this file (-: stdout, the table then goes to stderr)")
	fs.StringVar(&cfg.PlotPath, "plot", "", "write an SVG chart of p50/p99 latency and deliveries per second to this file")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of channel choices")
	fs.BoolVar(&verbose, "v", false, "log each connection failure")
	applyAuth := addAuthFlags(fs)
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	applyAuth()
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.Ramp, err = parseRate(ramp); err != nil {
		return cfg, err
	}
	if cfg.Sources, err = parseSources(sourceSpec, cfg.URL, cfg.StartNode || cfg.clustered()); err != nil {
		return cfg, err
	}
	if cfg.NodeIPs, err = parseSources(nodeIPs, "", true); err != nil {
		return cfg, err
	}
	if cfg.Steps, err = parseSteps(steps); err != nil {
		return cfg, err
	}
	if cfg.Bursts, err = parseBursts(bursts); err != nil {
		return cfg, err
	}
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Progress = stderr
	return cfg, cfg.Validate()
}

// parseRate reads "500/s", "500" or "0".
func parseRate(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "/s"), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bench: bad rate %q: want N/s", s)
	}
	return v, nil
}

// parseSteps reads "1000,5000".
func parseSteps(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("bench: bad -steps %q: want client counts like 1000,5000", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func usage(fs *flag.FlagSet) {
	out := fs.Output()
	fmt.Fprintf(out, `Usage: bench [flags]

Load-tests a pushcluster deployment over SSE and WebSocket and prints a
summary table (and JSON with -json). A line of progress goes to stderr
every second.

Scenarios:
  load          open -sse/-ws clients at -ramp, publish -publish-rate msg/s
                of -payload bytes, measure latency, loss and duplicates over
                -duration after -warmup
  resume        connect, disconnect everyone, publish -behind messages per
                channel, reconnect all at once from the last event ID, and
                time each client's catch-up
  fanout-floor  node CPU per delivered message (from /proc) against a bare
                write loop holding -sse connections; prints the ratio
  idle-memory   node RSS per idle connection against a bare server
                (SSE: a bare write loop; WebSocket: bare coder/websocket)
  drain         start three clustered nodes, connect everyone to the first,
                publish at -publish-rate, SIGTERM it while clients move
                round-robin to the others and resume; drain spread, resume
                times, reconnects per second, Redis reads, loss; then the
                same with -drain-baseline (all at once), side by side
  storm         the drain's setting, but SIGKILL: every client's stream is
                cut at once and it reconnects, with its own backoff, to the
                others; time until all resumed, the others' CPU per
                resume, Redis reads per resumed client, loss
  presence      start three clustered nodes, spread -sse/-ws idle clients
                over them on one channel (one in four also on another),
                and time GET /api/presence and /api/clients?limit=10000
                (latency, size, node CPU per query) at each of -steps
  burst         for each of -sse and -ws and each of -bursts, -sse/-ws
                subscribers on one channel of the node and then of a bare
                relay (reads the stream once, one frame per entry shared by
                every socket); one pipelined XADD burst each; peak RSS
                growth, time to deliver it all, CPU per delivery, node over
                bare, and whether every entry arrived once, in order
  connect       -sse SSE connects (each to its welcome, then closed), 32 at a
                time, to the node alone, with lifecycle events and with a
                connect hook, the variants alternating for -rounds; connects
                per second, node CPU and Redis commands per connect

Flags:
`)
	fs.PrintDefaults()
}
