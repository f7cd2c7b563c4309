package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// writeTable renders r for a person.
func (r *Report) writeTable(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "scenario\t%s\ttarget %s\n", r.Scenario, r.Target)
	s := r.Settings
	sse := "SSE"
	if s.Transport != "" {
		sse = s.Transport
	}
	fmt.Fprintf(w, "clients\t%d %s + %d WS\tchannels %s, ramp %g/s, sources %s\n", s.SSE, sse, s.WS, s.Channels, s.Ramp, s.Sources)
	switch r.Scenario {
	case ScenarioLoad:
		fmt.Fprintf(w, "publish\t%g msg/s via %s\tpayload %d B, window %s after %s warm-up\n", s.PublishRate, s.Via, s.Payload, s.Duration, s.Warmup)
	case ScenarioFanoutFloor:
		fmt.Fprintf(w, "publish\t%g msg/s via %s\tpayload %d B, window %s per side\n", s.PublishRate, s.Via, s.Payload, s.Duration)
	case ScenarioDrain, ScenarioStorm:
		fmt.Fprintf(w, "publish\t%g msg/s via %s\tpayload %d B, %s before the signal\n", s.PublishRate, s.Via, s.Payload, s.Warmup)
	case ScenarioBurst:
		fmt.Fprintf(w, "publish\tbursts %v, %d round(s)\teach burst one pipelined XADD batch\n", s.Bursts, s.Rounds)
	case ScenarioResume:
		fmt.Fprintf(w, "publish\t%d per channel while away, via %s\tpayload %d B\n", s.Behind, s.Via, s.Payload)
	}
	if c := r.Connections; c != nil {
		fmt.Fprintf(w, "connections\t%d/%d established\t%d failed attempts\n", c.Established, c.Target, c.Failed)
		writePercentiles(w, "connect time", c.ConnectMs)
	}
	if d := r.Delivery; d != nil {
		writeDelivery(w, d)
	}
	if n := r.Node; n != nil {
		fmt.Fprintf(w, "node CPU\t%.3f s (pid %d)\t%.2f µs per delivered message, RSS %s\n", n.CPUSeconds, n.PID, n.CPUUsPerDelivery, bytesText(float64(n.RSSBytes)))
	}
	if res := r.Resume; res != nil {
		writeResume(w, res)
	}
	if f := r.Floor; f != nil {
		writeFloor(w, f)
	}
	if len(r.Connects) > 0 {
		writeConnects(w, r.Connects)
	}
	if len(r.Memory) > 0 {
		writeMemory(w, r.Memory)
	}
	if len(r.Drain) > 0 {
		writeDrain(w, r.Drain)
	}
	if len(r.Presence) > 0 {
		writePresence(w, r.Presence)
	}
	if len(r.Bursts) > 0 {
		writeBursts(w, r.Bursts)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note\t%s\t\n", n)
	}
	return w.Flush()
}

func writePercentiles(w io.Writer, name string, p Percentiles) {
	fmt.Fprintf(w, "%s (ms)\tp50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\tmean %.3f over %d\n",
		name, p.P50, p.P90, p.P99, p.P999, p.Max, p.Mean, p.Count)
}

func writeDelivery(w io.Writer, d *DeliveryReport) {
	fmt.Fprintf(w, "published\t%d\t%d failed, %d skipped (publisher behind its rate)\n", d.Published, d.PublishFailed, d.Overrun)
	fmt.Fprintf(w, "deliveries\t%d\t%.0f per second\n", d.Deliveries, d.PerSecond)
	writePercentiles(w, "latency", d.LatencyMs)
	fmt.Fprintf(w, "completeness\t%d/%d received\tby %d clients subscribed throughout: %d missing, %d duplicates\n",
		d.Received, d.Expected, d.Steady, d.Missing, d.Duplicates)
	fmt.Fprintf(w, "trouble\t%d errors, %d reconnects\t%d gaps reported, %d sequence skips, %d foreign messages\n",
		d.Errors, d.Reconnects, d.Gaps, d.Skipped, d.Foreign)
}

func writeResume(w io.Writer, r *ResumeReport) {
	fmt.Fprintf(w, "while away\t%d published in %.3f s\t%d behind per channel\n", r.Published, r.PublishSecs, r.Behind)
	writePercentiles(w, "reconnect", r.ReconnectMs)
	writePercentiles(w, "catch-up", r.CatchupMs)
	fmt.Fprintf(w, "caught up\t%d/%d clients\tall within %.1f ms; %d replayed (%.0f/s)\n", r.CaughtUp, r.Clients, r.AllCaughtUpMs, r.Replayed, r.ReplayPerSec)
	fmt.Fprintf(w, "completeness\t%d missing of %d\t%d duplicates, %d gaps, %d errors, %d failed attempts\n",
		r.Missing, r.Expected, r.Duplicates, r.Gaps, r.Errors, r.FailedConns)
}

func writeFloor(w io.Writer, f *FloorReport) {
	fmt.Fprintf(w, "fan-out\t%d subscribers\tCPU from /proc, per delivered message\n", f.Subscribers)
	for _, side := range []struct {
		name string
		s    FloorSide
	}{{"node", f.Node}, {"floor", f.Floor}} {
		fmt.Fprintf(w, "  %s\t%.2f µs/delivery\t%.3f s CPU for %d/%d deliveries of %d messages (pid %d); latency p50 %.2f ms, p99 %.2f ms\n",
			side.name, side.s.CPUUsPerDelivery, side.s.CPUSeconds, side.s.Deliveries, side.s.Expected, side.s.Messages, side.s.PID,
			side.s.LatencyMs.P50, side.s.LatencyMs.P99)
	}
	fmt.Fprintf(w, "  ratio\t%.2f×\tnode over floor\n", f.Ratio)
	if p := f.Poll; p != nil {
		fmt.Fprintf(w, "  node, poll\t%.2f µs/delivery\t%.3f s CPU for %d/%d deliveries of %d messages; latency p50 %.2f ms, p99 %.2f ms\n",
			p.CPUUsPerDelivery, p.CPUSeconds, p.Deliveries, p.Expected, p.Messages, p.LatencyMs.P50, p.LatencyMs.P99)
		fmt.Fprintf(w, "  ratio\t%.2f×\tlong polling over SSE, on the node\n", f.PollRatio)
	}
}

func writeMemory(w io.Writer, rows []MemoryRow) {
	fmt.Fprintf(w, "idle memory\tRSS delta per connection\tfrom /proc VmRSS\n")
	for _, m := range rows {
		if m.Transport == transportPoll {
			fmt.Fprintf(w, "  %s × %d\tnode %s, its SSE %s\tratio %.2f× (poll +%s, SSE +%s)\n",
				m.Transport, m.Connections, bytesText(m.NodePerConn), bytesText(m.BarePerConn), m.Ratio,
				bytesText(float64(m.NodeBytes)), bytesText(float64(m.BareBytes)))
			continue
		}
		fmt.Fprintf(w, "  %s × %d\tnode %s, bare %s\tratio %.2f× (node +%s, bare +%s)\n",
			m.Transport, m.Connections, bytesText(m.NodePerConn), bytesText(m.BarePerConn), m.Ratio,
			bytesText(float64(m.NodeBytes)), bytesText(float64(m.BareBytes)))
	}
}

// bytesText renders a byte count with a binary unit.
func bytesText(b float64) string {
	switch {
	case b >= 1<<30 || b <= -(1<<30):
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case b >= 1<<20 || b <= -(1<<20):
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10 || b <= -(1<<10):
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
