package main

import (
	"fmt"
	"io"
	"slices"
)

// burstSlackPerSub is the per-subscriber allowance in issue 11's target:
// peak RSS growth at most 3× the bare relay's plus this per subscriber.
const (
	burstBareFactor  = 3
	burstSlackPerSub = 4 << 10
)

// BurstRow is one burst shape sent to one transport's subscribers, on the
// node and on the bare relay, Rounds times. The summaries are medians over
// the rounds; the ratios are node median over bare median.
type BurstRow struct {
	Transport    string       `json:"transport"`
	Subscribers  int          `json:"subscribers"`
	Burst        BurstShape   `json:"burst"`
	Rounds       []BurstRound `json:"rounds"`
	Node         BurstSummary `json:"node"`
	Bare         BurstSummary `json:"bare"`
	GrowthRatio  float64      `json:"rss_growth_ratio"`
	DeliverRatio float64      `json:"deliver_ratio"`
	CPURatio     float64      `json:"cpu_per_delivery_ratio"`
	// BoundBytes is the target for the node's median growth:
	// 3 × the bare median growth + 4 KiB per subscriber.
	BoundBytes float64 `json:"rss_bound_bytes"`
	RSSPass    bool    `json:"rss_pass"`
	// OncePass is every entry delivered once, in order, to every
	// subscriber of the node, in every round.
	OncePass bool `json:"once_in_order_pass"`
	BareOnce bool `json:"bare_once_in_order"`
}

// BurstRound is one round of a row: the node, then the bare relay.
type BurstRound struct {
	Node BurstSample `json:"node"`
	Bare BurstSample `json:"bare"`
}

// BurstSample is one burst to one server. Peak is the larger of VmHWM
// (reset just before the burst) and VmRSS sampled every 10 ms.
type BurstSample struct {
	PID          int   `json:"pid"`
	RestingBytes int64 `json:"resting_rss_bytes"`
	HWMBytes     int64 `json:"vmhwm_bytes"`
	SampledBytes int64 `json:"sampled_max_rss_bytes"`
	GrowthBytes  int64 `json:"peak_rss_growth_bytes"`
	// DeliverMs runs from the burst's send to the last subscriber's last
	// entry (to the timeout when it ran out). CPUUsPerDelivery is the CPU
	// over that time per entry delivered.
	DeliverMs        float64 `json:"deliver_ms"`
	CPUSeconds       float64 `json:"cpu_s"`
	CPUUsPerDelivery float64 `json:"cpu_us_per_delivery"`
	// Expected is subscribers × entries; Delivered counts each entry once
	// per subscriber, in order; Complete counts the subscribers that got
	// the last entry before the timeout.
	Expected   int64 `json:"expected"`
	Delivered  int64 `json:"delivered"`
	Complete   int   `json:"complete_subscribers"`
	Missing    int64 `json:"missing"`
	Duplicates int64 `json:"duplicates_or_late"`
	Skips      int64 `json:"sequence_skips"`
	Gaps       int64 `json:"gaps"`
	Errors     int64 `json:"errors"`
	Foreign    int64 `json:"foreign"`
	Reconnects int64 `json:"reconnects"`
	TimedOut   bool  `json:"timed_out"`
}

// onceInOrder reports whether every subscriber got every entry exactly
// once and in order.
func (s BurstSample) onceInOrder() bool {
	return !s.TimedOut && s.Delivered == s.Expected && s.Missing == 0 && s.Duplicates == 0 &&
		s.Skips == 0 && s.Gaps == 0 && s.Errors == 0 && s.Foreign == 0
}

// BurstSummary is one side's figures over the rounds.
type BurstSummary struct {
	GrowthBytes      Spread `json:"peak_rss_growth_bytes"`
	DeliverMs        Spread `json:"deliver_ms"`
	CPUUsPerDelivery Spread `json:"cpu_us_per_delivery"`
	// The counts are totals over the rounds.
	Expected   int64 `json:"expected"`
	Delivered  int64 `json:"delivered"`
	Reconnects int64 `json:"reconnects"`
	Missing    int64 `json:"missing"`
	Duplicates int64 `json:"duplicates_or_late"`
	Skips      int64 `json:"sequence_skips"`
	Gaps       int64 `json:"gaps"`
}

// Spread is the median and range of a figure over rounds.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(v []float64) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	s := slices.Sorted(slices.Values(v))
	mid := len(s) / 2
	med := s[mid]
	if len(s)%2 == 0 {
		med = (s[mid-1] + s[mid]) / 2
	}
	return Spread{Median: med, Min: s[0], Max: s[len(s)-1]}
}

func summarizeBurst(samples []BurstSample) BurstSummary {
	var growth, deliver, cpu []float64
	var sum BurstSummary
	for _, s := range samples {
		growth = append(growth, float64(s.GrowthBytes))
		deliver = append(deliver, s.DeliverMs)
		cpu = append(cpu, s.CPUUsPerDelivery)
		sum.Expected += s.Expected
		sum.Delivered += s.Delivered
		sum.Reconnects += s.Reconnects
		sum.Missing += s.Missing
		sum.Duplicates += s.Duplicates
		sum.Skips += s.Skips
		sum.Gaps += s.Gaps
	}
	sum.GrowthBytes, sum.DeliverMs, sum.CPUUsPerDelivery = spreadOf(growth), spreadOf(deliver), spreadOf(cpu)
	return sum
}

// summarize fills the medians, ratios and verdicts from the rounds.
func (row *BurstRow) summarize() {
	var node, bare []BurstSample
	row.OncePass, row.BareOnce = len(row.Rounds) > 0, len(row.Rounds) > 0
	for _, r := range row.Rounds {
		node, bare = append(node, r.Node), append(bare, r.Bare)
		row.OncePass = row.OncePass && r.Node.onceInOrder()
		row.BareOnce = row.BareOnce && r.Bare.onceInOrder()
	}
	row.Node, row.Bare = summarizeBurst(node), summarizeBurst(bare)
	row.GrowthRatio = ratio(row.Node.GrowthBytes.Median, row.Bare.GrowthBytes.Median)
	row.DeliverRatio = ratio(row.Node.DeliverMs.Median, row.Bare.DeliverMs.Median)
	row.CPURatio = ratio(row.Node.CPUUsPerDelivery.Median, row.Bare.CPUUsPerDelivery.Median)
	row.BoundBytes = burstBound(row.Bare.GrowthBytes.Median, row.Subscribers)
	row.RSSPass = len(row.Rounds) > 0 && row.Node.GrowthBytes.Median <= row.BoundBytes
}

// burstBound is issue 11's RSS target for n subscribers. A bare growth
// below zero (RSS fell) counts as none.
func burstBound(bareGrowth float64, n int) float64 {
	return burstBareFactor*max(bareGrowth, 0) + burstSlackPerSub*float64(n)
}

// writeBursts renders the rows as their own block of columns: the blank
// lines around it keep the tabwriter from aligning it with the notes.
func writeBursts(w io.Writer, rows []BurstRow) {
	fmt.Fprintf(w, "\nbursts\tside\tpeak RSS growth\tdeliver all\tCPU/delivery\tdelivered\tmissing/dup/skip/gap\treconnects\n")
	for _, row := range rows {
		name := fmt.Sprintf("  %s × %d, %d × %s", row.Transport, row.Subscribers, row.Burst.Count, bytesText(float64(row.Burst.Bytes)))
		for _, side := range []struct {
			name string
			sum  BurstSummary
		}{{"node", row.Node}, {"bare", row.Bare}} {
			s := side.sum
			fmt.Fprintf(w, "%s\t%s\t+%s\t%s\t%s\t%d/%d\t%d/%d/%d/%d\t%d\n", name, side.name,
				spreadText(s.GrowthBytes, bytesText), spreadText(s.DeliverMs, secondsText),
				spreadText(s.CPUUsPerDelivery, usText), s.Delivered, s.Expected,
				s.Missing, s.Duplicates, s.Skips, s.Gaps, s.Reconnects)
			name = ""
		}
		fmt.Fprintf(w, "\tnode/bare\t%.1f×\t%.2f×\t%.2f×\tonce, in order: %s\tRSS ≤ %s: %s\t\n",
			row.GrowthRatio, row.DeliverRatio, row.CPURatio, verdict(row.OncePass), bytesText(row.BoundBytes), verdict(row.RSSPass))
	}
	fmt.Fprintln(w)
}

// spreadText renders a median, with the range when the rounds differ.
func spreadText(s Spread, unit func(float64) string) string {
	if s.Min == s.Max {
		return unit(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", unit(s.Median), unit(s.Min), unit(s.Max))
}

func secondsText(msv float64) string { return fmt.Sprintf("%.2f s", msv/1000) }

func usText(us float64) string { return fmt.Sprintf("%.2f µs", us) }

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
