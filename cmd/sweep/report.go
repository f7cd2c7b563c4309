package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"
)

// Result is one run: a number of channels of interest under a fixed rate.
type Result struct {
	Round         int     `json:"round"`
	Channels      int     `json:"channels"`
	JoinSeconds   float64 `json:"join_seconds"`
	Xadds         int64   `json:"xadds"`
	XaddFailures  int64   `json:"xadd_failures"`
	WindowSeconds float64 `json:"window_seconds"`
	XaddPerSec    float64 `json:"xadd_per_second"`
	// Seeded is how many XADDs gave each channel an entry before the window.
	Seeded int64 `json:"seeded_xadds"`
	// RedisUsPerXadd is Redis's CPU (user+sys) over the window per XADD.
	RedisUsPerXadd float64 `json:"redis_cpu_us_per_xadd"`
	// RedisUsFirstHalf is the same before the pub/sub connection was
	// killed: steady state. RedisUsSecondHalf includes the recovery.
	RedisUsFirstHalf  float64 `json:"redis_cpu_us_per_xadd_first_half"`
	RedisUsSecondHalf float64 `json:"redis_cpu_us_per_xadd_second_half"`
	// RecoveryMs estimates what the kill cost Redis, in CPU milliseconds:
	// the second half's CPU beyond the first half's rate.
	RecoveryMs float64 `json:"redis_cpu_ms_kill_recovery"`
	// BareUsPerXadd is Redis CPU per XADD with no node watching (-bare).
	BareUsPerXadd float64 `json:"bare_redis_cpu_us_per_xadd,omitempty"`
	// NodeUsPerXadd is this process's CPU per XADD: the hub and the
	// publisher, which share the process.
	NodeUsPerXadd float64 `json:"node_and_publisher_cpu_us_per_xadd"`
	HubReads      uint64  `json:"hub_pipelined_reads"`
	// Commands is, per Redis command, its calls and time per XADD.
	Commands map[string]CommandCost `json:"redis_commands_per_xadd"`

	Killed       int     `json:"pubsub_connections_killed"`
	Delivered    int64   `json:"delivered"`
	Missing      int64   `json:"missing"`
	Extra        int64   `json:"extra"`
	Duplicates   int64   `json:"duplicates_or_out_of_order"`
	Misrouted    int64   `json:"misrouted"`
	Gaps         int64   `json:"gap_notices"`
	Kicks        int64   `json:"kicks"`
	DrainSeconds float64 `json:"drain_seconds"`
	// Shards is each primary's share and cost, in a Redis Cluster.
	Shards []ShardCost `json:"shards,omitempty"`
}

// ShardCost is one primary's part of a run.
type ShardCost struct {
	Shard string `json:"shard"`
	// Share is the fraction of the window's XADDs the primary ran.
	Share float64 `json:"xadd_share"`
	// RedisUsPerXadd is the primary's CPU per XADD it ran, in the steady
	// first half (before the kill) and over the whole window.
	RedisUsFirstHalf float64 `json:"redis_cpu_us_per_own_xadd_first_half"`
	RedisUsPerXadd   float64 `json:"redis_cpu_us_per_own_xadd"`
}

// CommandCost is one Redis command's share of a run, per XADD.
type CommandCost struct {
	Calls float64 `json:"calls"`
	Usec  float64 `json:"usec"`
}

// Complete reports whether every message was delivered exactly once, with
// the doorbell's connection killed midway.
func (r *Result) Complete() bool {
	return r.Killed > 0 && r.XaddFailures == 0 && r.Missing == 0 && r.Extra == 0 &&
		r.Duplicates == 0 && r.Misrouted == 0 && r.Gaps == 0 && r.Kicks == 0
}

func (r *Result) fill(load loadResult, s [3]sample, nd *node, p *publisher) {
	before, after := s[0], s[2]
	r.Xadds, r.XaddFailures = load.Sent, load.Failed
	r.WindowSeconds = load.Elapsed.Seconds()
	per := func(v float64) float64 { return v / float64(max(load.Sent, 1)) }
	r.XaddPerSec = float64(load.Sent) / r.WindowSeconds
	r.RedisUsPerXadd = per((after.redis.CPU - before.redis.CPU) * 1e6)
	r.RedisUsFirstHalf = (s[1].redis.CPU - before.redis.CPU) * 1e6 / float64(max(load.HalfSent, 1))
	r.RedisUsSecondHalf = (after.redis.CPU - s[1].redis.CPU) * 1e6 / float64(max(load.Sent-load.HalfSent, 1))
	r.RecoveryMs = (r.RedisUsSecondHalf - r.RedisUsFirstHalf) * float64(load.Sent-load.HalfSent) / 1e3
	r.NodeUsPerXadd = per(float64((after.self - before.self).Microseconds()))
	r.HubReads = after.reads - before.reads
	r.Commands = map[string]CommandCost{}
	for name, a := range after.redis.Commands {
		b := before.redis.Commands[name]
		if a.Calls > b.Calls {
			r.Commands[name] = CommandCost{Calls: per(float64(a.Calls - b.Calls)), Usec: per(float64(a.Usec - b.Usec))}
		}
	}
	r.fillShards(s)
	t := &nd.tally
	r.Delivered, r.Duplicates, r.Misrouted = t.delivered()-r.Seeded, t.dups.Load(), t.misrouted.Load()
	r.Gaps, r.Kicks = t.gaps.Load(), t.kicks.Load()
	for i, c := range nd.conns {
		got, want := int64(c.received()), int64(p.counts[i])
		r.Missing += max(want-got, 0)
		r.Extra += max(got-want, 0)
	}
}

// fillShards works out each primary's share of the XADDs and its CPU per
// XADD it ran.
func (r *Result) fillShards(s [3]sample) {
	first, half, last := s[0].redis.Shards, s[1].redis.Shards, s[2].redis.Shards
	var total int64
	for i := range last {
		total += last[i].Commands["xadd"].Calls - first[i].Commands["xadd"].Calls
	}
	for i := range last {
		xadds := last[i].Commands["xadd"].Calls - first[i].Commands["xadd"].Calls
		halfXadds := half[i].Commands["xadd"].Calls - first[i].Commands["xadd"].Calls
		r.Shards = append(r.Shards, ShardCost{
			Shard:            last[i].Addr,
			Share:            float64(xadds) / float64(max(total, 1)),
			RedisUsPerXadd:   (last[i].CPU - first[i].CPU) * 1e6 / float64(max(xadds, 1)),
			RedisUsFirstHalf: (half[i].CPU - first[i].CPU) * 1e6 / float64(max(halfXadds, 1)),
		})
	}
}

// Machine describes where the sweep ran.
type Machine struct {
	CPUs  int    `json:"cpus"`
	OS    string `json:"os"`
	Go    string `json:"go"`
	Redis string `json:"redis"`
}

func describeMachine(ctx context.Context, rdb *redis.Client) Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(), Redis: "unknown"}
	if text, err := rdb.Info(ctx, "server").Result(); err == nil {
		for line := range strings.Lines(text) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				m.Redis = v
			}
		}
	}
	return m
}

func (s *Sweep) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

func (s *Sweep) writeTable(w io.Writer) {
	m := s.Machine
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s, Redis %s; load average %s at start, %s at end\n",
		m.CPUs, m.OS, m.Go, m.Redis, s.LoadStart, s.LoadEnd)
	fmt.Fprintf(w, "load: %d XADD/s for %s to random channels; doorbell pub/sub connection killed halfway\n", s.Rate, s.Duration)
	if s.Seeded {
		fmt.Fprintf(w, "streams seeded with one entry each before the window: no XADD in it creates a stream\n")
	} else {
		fmt.Fprintf(w, "streams not seeded: an XADD in the window creates its stream when the channel had none\n")
	}
	fmt.Fprintf(w, "node+publisher CPU: the hub and the publisher share this process\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tchannels\tXADDs\tXADD/s achieved\tRedis CPU µs/XADD\t(1st half | 2nd half)\tkill recovery Redis CPU\tbare XADD\tnode+publisher CPU µs/XADD\tdelivered\tmissing\tdup\tjoin time\tkilled\t")
	for _, r := range s.Runs {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.0f\t%.1f\t(%.1f | %.1f)\t%.0f ms\t%s\t%.1f\t%d\t%d\t%d\t%.2fs\t%d\t\n",
			r.Round, r.Channels, r.Xadds, r.XaddPerSec,
			r.RedisUsPerXadd, r.RedisUsFirstHalf, r.RedisUsSecondHalf, r.RecoveryMs, orDash(r.BareUsPerXadd), r.NodeUsPerXadd,
			r.Delivered, r.Missing, r.Duplicates, r.JoinSeconds, r.Killed)
	}
	tw.Flush()
	s.writeShards(w)
	s.writeAnomalies(w)
	s.writeCommands(w)
	s.writeSummaries(w)
	s.writeVerdict(w)
}

func orDash(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

// writeShards prints, in a Redis Cluster, each primary's share of the
// XADDs and its own Redis CPU per XADD it ran.
func (s *Sweep) writeShards(w io.Writer) {
	if len(s.Runs) == 0 || len(s.Runs[0].Shards) == 0 {
		return
	}
	fmt.Fprintf(w, "\nper primary: share of the XADDs, and its Redis CPU µs per XADD it ran (1st half, before the kill | whole window):\n")
	for _, r := range s.Runs {
		fmt.Fprintf(w, "  round %d, %6d channels:", r.Round, r.Channels)
		for _, sh := range r.Shards {
			fmt.Fprintf(w, "  %s %4.1f%% %5.1f | %5.1f", sh.Shard, 100*sh.Share, sh.RedisUsFirstHalf, sh.RedisUsPerXadd)
		}
		fmt.Fprintln(w)
	}
}

// writeAnomalies prints the counters that are zero in a healthy run.
func (s *Sweep) writeAnomalies(w io.Writer) {
	for _, r := range s.Runs {
		if r.XaddFailures+r.Extra+r.Misrouted+r.Gaps+r.Kicks > 0 || r.Killed == 0 {
			fmt.Fprintf(w, "round %d, %d channels: xadd failures %d, extra %d, misrouted %d, gap notices %d, kicks %d, pub/sub killed %d\n",
				r.Round, r.Channels, r.XaddFailures, r.Extra, r.Misrouted, r.Gaps, r.Kicks, r.Killed)
		}
	}
}

// writeCommands prints, per run, the Redis commands that ran per XADD,
// costliest first: where Redis's time went.
func (s *Sweep) writeCommands(w io.Writer) {
	fmt.Fprintf(w, "\nRedis commands per XADD (INFO commandstats delta over the window; µs excludes I/O):\n")
	for _, r := range s.Runs {
		names := make([]string, 0, len(r.Commands))
		for name := range r.Commands {
			names = append(names, name)
		}
		slices.SortFunc(names, func(a, b string) int { return cmp.Compare(r.Commands[b].Usec, r.Commands[a].Usec) })
		parts := make([]string, len(names))
		for i, name := range names {
			c := r.Commands[name]
			parts[i] = fmt.Sprintf("%s %.3g calls %.2f µs", name, c.Calls, c.Usec)
		}
		fmt.Fprintf(w, "  round %d, %d channels, %d hub reads: %s\n", r.Round, r.Channels, r.HubReads, strings.Join(parts, "; "))
	}
}
