// Command sweep measures what live delivery costs Redis as the number of
// channels with local subscribers on one node grows.
//
// The naive design, one XREAD BLOCK over every channel of interest, makes
// Redis re-register all N keys on every wake-up; measured on this project's
// machine it collapses near 1,000 channels. The hub instead subscribes to one
// keyspace notification per channel (the doorbell) and reads only the
// channels that rang, from its own cursors, in pipelined XRANGE batches. If
// that holds, Redis CPU per published message stays flat as N grows.
//
// For each N, sweep starts a hub on a fresh key prefix, joins one counting
// subscription to each of N channels, gives every channel one entry (unless
// -seed=false, so that no XADD in the window pays for creating a stream),
// and publishes plain XADDs at a fixed rate to random channels among them.
// Halfway through it kills the doorbell's pub/sub connection, so every run
// also proves that a lost wake-up only delays; the first half of the window
// is the steady state, the second includes the recovery, which is O(N) by
// design (resubscribe and re-read every channel).
//
// It reports Redis CPU (INFO cpu) per XADD, this process's CPU per XADD (the
// hub and the publisher together), Redis's command counts per XADD (INFO
// commandstats), and whether every message was delivered exactly once. It
// passes when the median Redis CPU per XADD over the whole window at the
// largest N is at most -max-ratio times that at the smallest, and delivery
// is complete in every run.
//
//	go run ./cmd/sweep                      # 100, 1k, 10k, 100k channels
//	go run ./cmd/sweep -channels 100,1000 -duration 3s
//	go run ./cmd/sweep -rounds 3 -bare      # medians; Redis's own XADD cost
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults for Config.
const (
	DefaultChannels     = "100,1000,10000,100000"
	DefaultRate         = 5000
	DefaultDuration     = 10 * time.Second
	DefaultJoinWorkers  = 64
	DefaultDrainTimeout = 30 * time.Second
	DefaultMaxRatio     = 2.0
	DefaultRounds       = 1
)

// Config is what one sweep measures.
type Config struct {
	// RedisURL names the server to measure. Empty means start redis-server
	// from PATH on a free loopback port and stop it at exit.
	RedisURL string
	// Channels lists the numbers of channels of interest, one run each.
	Channels []int
	// Rounds is how many times the whole list is measured; the verdict is
	// on the median of each N.
	Rounds int
	// Rate is the XADD rate, per second, of the publisher.
	Rate int
	// Duration is how long each run publishes.
	Duration time.Duration
	// JoinWorkers is how many subscriptions join concurrently.
	JoinWorkers int
	// DrainTimeout bounds the wait for delivery after publishing stops.
	DrainTimeout time.Duration
	// MaxRatio is the pass bound on Redis CPU per XADD, largest N over smallest.
	MaxRatio float64
	// Seed gives every channel one entry before the window, so that XADDs in
	// the window append to existing streams instead of creating them.
	Seed bool
	// Cluster measures a Redis Cluster of three primaries with a replica
	// each, started on loopback ports, instead of RedisURL: Redis CPU is
	// summed over the primaries and reported per primary too.
	Cluster bool
	// Bare also measures each N with no node watching: the cost of the
	// XADDs alone, to tell the node's share from Redis's own.
	Bare bool
	// JSON prints the results as JSON instead of a table.
	JSON bool
	// Progress receives one line per step; nil means discard.
	Progress io.Writer
	// Logger receives the hub's log. Nil means discard.
	Logger *slog.Logger
}

// Validate reports every problem with cfg at once.
func (cfg Config) Validate() error {
	var errs []error
	if len(cfg.Channels) == 0 {
		errs = append(errs, errors.New("sweep: no channel counts"))
	}
	for _, n := range cfg.Channels {
		if n <= 0 {
			errs = append(errs, fmt.Errorf("sweep: channel count %d is not positive", n))
		}
	}
	if cfg.Rate < 100 {
		errs = append(errs, errors.New("sweep: rate below 100 XADD/s"))
	}
	if cfg.Duration < time.Second {
		errs = append(errs, errors.New("sweep: duration below 1s"))
	}
	if cfg.Rounds <= 0 || cfg.JoinWorkers <= 0 || cfg.DrainTimeout <= 0 || cfg.MaxRatio <= 0 {
		errs = append(errs, errors.New("sweep: rounds, workers, drain timeout and max ratio must be positive"))
	}
	return errors.Join(errs...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:])
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

func parseFlags(args []string) (Config, error) {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	cfg := Config{}
	var channels string
	var verbose bool
	fs.StringVar(&cfg.RedisURL, "redis-url", "", "Redis to measure, redis://host:port/db (empty: start redis-server from PATH)")
	fs.StringVar(&channels, "channels", DefaultChannels, "comma-separated numbers of channels of interest, one run each")
	fs.IntVar(&cfg.Rounds, "rounds", DefaultRounds, "times to measure the whole list; the verdict uses the median per N")
	fs.IntVar(&cfg.Rate, "rate", DefaultRate, "XADDs per second")
	fs.DurationVar(&cfg.Duration, "duration", DefaultDuration, "publishing window per run")
	fs.IntVar(&cfg.JoinWorkers, "join-workers", DefaultJoinWorkers, "subscriptions joined concurrently")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", DefaultDrainTimeout, "longest wait for delivery after publishing")
	fs.Float64Var(&cfg.MaxRatio, "max-ratio", DefaultMaxRatio, "pass bound: Redis µs/XADD at the largest N over the smallest")
	fs.BoolVar(&cfg.Seed, "seed", true, "give every channel one entry before measuring, so no XADD in the window creates a stream")
	fs.BoolVar(&cfg.Cluster, "cluster", false, "measure a Redis Cluster (three primaries, a replica each) started on loopback, CPU per primary from INFO")
	fs.BoolVar(&cfg.Bare, "bare", false, "also measure each N with no node watching (Redis's own XADD cost)")
	fs.BoolVar(&cfg.JSON, "json", false, "print JSON instead of a table")
	fs.BoolVar(&verbose, "v", false, "log the hub's info messages too")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	var err error
	if cfg.Channels, err = parseInts(channels); err != nil {
		return cfg, err
	}
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.Progress = os.Stderr
	return cfg, cfg.Validate()
}

func parseInts(list string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("sweep: bad channel count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// measureRound measures n channels of interest, and the bare XADD cost too
// when asked.
func measureRound(ctx context.Context, cfg Config, srv *server, n int) (Result, error) {
	r, err := measure(ctx, cfg, srv, n)
	if err == nil && cfg.Bare {
		r.BareUsPerXadd, err = measureBare(ctx, cfg, srv, n)
	}
	return r, err
}

// run measures every N of cfg in turn and writes the report to out.
func run(ctx context.Context, cfg Config, out io.Writer) error {
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := openRedis(ctx, cfg.RedisURL, cfg.Cluster)
	if err != nil {
		return err
	}
	defer srv.Close()
	sweep := Sweep{
		Machine: describeMachine(ctx, srv.admin), LoadStart: loadAverage(),
		Rate: cfg.Rate, Duration: cfg.Duration.String(), Seeded: cfg.Seed, Rounds: cfg.Rounds,
	}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, n := range cfg.Channels {
			r, err := measureRound(ctx, cfg, srv, n)
			if err != nil {
				return fmt.Errorf("sweep: failed to measure %d channels: %w", n, err)
			}
			r.Round = round
			sweep.Runs = append(sweep.Runs, r)
		}
	}
	sweep.LoadEnd = loadAverage()
	sweep.judge(cfg.MaxRatio)
	if cfg.JSON {
		return sweep.writeJSON(out)
	}
	sweep.writeTable(out)
	return nil
}
