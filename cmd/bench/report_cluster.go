package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// writeDrain renders the drains side by side, one column each.
func writeDrain(w io.Writer, rows []DrainReport) {
	line := func(name string, f func(d DrainReport) string) {
		fmt.Fprintf(w, "  %s", name)
		for _, d := range rows {
			fmt.Fprintf(w, "\t%s", f(d))
		}
		fmt.Fprintln(w, "\t")
	}
	secs := func(msec float64) string { return fmt.Sprintf("%.2f s", msec/1000) }
	fmt.Fprintf(w, "%s\tclients on the first of %d nodes, times from its %s\t\n", rows[0].name(), rows[0].Nodes, rows[0].signal())
	line("-drain-timeout", func(d DrainReport) string { return d.DrainTimeout })
	line("streams it closed", func(d DrainReport) string {
		return fmt.Sprintf("%d/%d, first %s, last %s", d.Closed, d.Clients, secs(d.FirstCloseMs), secs(d.SpreadMs))
	})
	line("it exited", func(d DrainReport) string { return secs(d.ExitMs) })
	line("reconnected", func(d DrainReport) string {
		return fmt.Sprintf("%d, first %s, %d failed attempts", d.Reconnected, secs(d.FirstReconnectMs), d.FailedConns)
	})
	line("resumed", func(d DrainReport) string {
		return fmt.Sprintf("%d/%d, all by %s", d.Resumed, d.Clients, secs(d.AllResumedMs))
	})
	line("resumed at (ms)", func(d DrainReport) string { return shortPercentiles(d.ResumeMs) })
	line("outage per client (ms)", func(d DrainReport) string { return shortPercentiles(d.OutageMs) })
	line("the same less its backoff (ms)", func(d DrainReport) string {
		return fmt.Sprintf("%s; within %s: %d/%d", shortPercentiles(d.BeyondBackoffMs), resumeBound, d.WithinBackoffBound, d.Resumed)
	})
	line("peak closes", func(d DrainReport) string { return fmt.Sprintf("%d in 1 s", d.PeakClosesPerSec) })
	line("peak reconnects", func(d DrainReport) string {
		return fmt.Sprintf("%d in 1 s, %d in 100 ms", d.PeakReconnectsPerSec, d.PeakReconnectsPer100ms)
	})
	line("Redis until all resumed", func(d DrainReport) string {
		r := d.Redis
		return fmt.Sprintf("%s: XRANGE %d, XREVRANGE %d, XREAD %d, XINFO %d, XADD %d; CPU %.0f ms",
			secs(r.WindowMs), r.XRange, r.XRevRange, r.XRead, r.XInfo, r.XAdd, r.CPUMs)
	})
	line("XRANGE for resuming", func(d DrainReport) string {
		r := d.Redis
		return fmt.Sprintf("%.0f (%.3f per client) beyond ~%.0f live at %.1f/s per node", r.ResumeReads, r.ReadsPerClient, r.LiveEstimate, r.SteadyXRangePerSec)
	})
	line("CPU of the others per resume", func(d DrainReport) string {
		return fmt.Sprintf("%.0f µs (%.0f ms beyond idle until all resumed)", d.SurvivorCPUUsPerResume, d.SurvivorCPUMs)
	})
	line("completeness", func(d DrainReport) string {
		return fmt.Sprintf("%d missing, %d skipped, %d duplicates, %d gaps, %d errors of %d published (%d failed)",
			d.Missing, d.Skipped, d.Duplicates, d.Gaps, d.Errors, d.Published, d.PublishFailed)
	})
	if len(rows) == 2 && rows[1].PeakReconnectsPerSec > 0 {
		fmt.Fprintf(w, "  peak reconnects per second\t%.2f× the all-at-once drain's\t\n",
			ratio(float64(rows[0].PeakReconnectsPerSec), float64(rows[1].PeakReconnectsPerSec)))
	}
	for _, d := range rows {
		fmt.Fprintf(w, "  reconnects per second, %s\t%s\t\n", d.DrainTimeout, joinInts(d.ReconnectsPerSec))
	}
}

func (d DrainReport) signal() string {
	if d.Signal == "" {
		return "SIGTERM"
	}
	return d.Signal
}

func (d DrainReport) name() string {
	if d.Signal == "SIGKILL" {
		return "storm"
	}
	return "drain"
}

func shortPercentiles(p Percentiles) string {
	return fmt.Sprintf("p50 %.0f  p99 %.0f  max %.0f", p.P50, p.P99, p.Max)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, " ")
}

// writePresence renders one line per question and client count.
func writePresence(w io.Writer, rows []PresenceRow) {
	fmt.Fprintf(w, "presence\tasked of the first node\tlatency (ms), CPU per query beyond idle\n")
	for _, p := range rows {
		fmt.Fprintf(w, "  %d clients, %s\t%d/%d listed, %s\tp50 %.2f  p99 %.2f  max %.2f; CPU asked %.0f µs, others %.0f µs; %d partial, %d failed\n",
			p.Clients, p.Question, p.Listed, p.Expected, bytesText(float64(p.Bytes)),
			p.LatencyMs.P50, p.LatencyMs.P99, p.LatencyMs.Max, p.AskedCPUUs, p.PeersCPUUs, p.Partial, p.Failed)
	}
}
