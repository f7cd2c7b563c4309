package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// Sweep is every run and the verdict on them.
type Sweep struct {
	Machine   Machine   `json:"machine"`
	LoadStart string    `json:"load_average_start"`
	LoadEnd   string    `json:"load_average_end"`
	Rate      int       `json:"rate"`
	Duration  string    `json:"duration"`
	Seeded    bool      `json:"seeded"`
	Rounds    int       `json:"rounds"`
	Runs      []Result  `json:"runs"`
	Summaries []Summary `json:"medians"`
	// Ratio is the median Redis CPU per XADD over the whole window at the
	// largest N over that at the smallest, the kill's recovery included.
	Ratio float64 `json:"redis_cpu_ratio"`
	// SteadyRatio is the same over the first half of the window, before the
	// pub/sub connection is killed: the cost per published message, which
	// the pass bound applies to. The recovery is a cost per reconnect and
	// is reported on its own (RecoveryMs).
	SteadyRatio float64 `json:"redis_cpu_ratio_first_half"`
	MaxRatio    float64 `json:"max_ratio"`
	Complete    bool    `json:"delivery_complete"`
	Pass        bool    `json:"pass"`
}

// Summary is the median over every round of one N.
type Summary struct {
	Channels          int     `json:"channels"`
	Rounds            int     `json:"rounds"`
	RedisUsPerXadd    float64 `json:"redis_cpu_us_per_xadd"`
	RedisUsFirstHalf  float64 `json:"redis_cpu_us_per_xadd_first_half"`
	RedisUsSecondHalf float64 `json:"redis_cpu_us_per_xadd_second_half"`
	RecoveryMs        float64 `json:"redis_cpu_ms_kill_recovery"`
	BareUsPerXadd     float64 `json:"bare_redis_cpu_us_per_xadd,omitempty"`
	NodeUsPerXadd     float64 `json:"node_and_publisher_cpu_us_per_xadd"`
}

// summarize returns the medians per N, smallest N first.
func summarize(runs []Result) []Summary {
	byN := map[int][]Result{}
	for _, r := range runs {
		byN[r.Channels] = append(byN[r.Channels], r)
	}
	out := make([]Summary, 0, len(byN))
	for n, rs := range byN {
		med := func(f func(Result) float64) float64 {
			vs := make([]float64, len(rs))
			for i, r := range rs {
				vs[i] = f(r)
			}
			return median(vs)
		}
		out = append(out, Summary{
			Channels: n, Rounds: len(rs),
			RedisUsPerXadd:    med(func(r Result) float64 { return r.RedisUsPerXadd }),
			RedisUsFirstHalf:  med(func(r Result) float64 { return r.RedisUsFirstHalf }),
			RedisUsSecondHalf: med(func(r Result) float64 { return r.RedisUsSecondHalf }),
			RecoveryMs:        med(func(r Result) float64 { return r.RecoveryMs }),
			BareUsPerXadd:     med(func(r Result) float64 { return r.BareUsPerXadd }),
			NodeUsPerXadd:     med(func(r Result) float64 { return r.NodeUsPerXadd }),
		})
	}
	slices.SortFunc(out, func(a, b Summary) int { return cmp.Compare(a.Channels, b.Channels) })
	return out
}

func median(vs []float64) float64 {
	slices.Sort(vs)
	if n := len(vs); n%2 == 1 {
		return vs[n/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

// judge computes the ratios and the verdict.
func (s *Sweep) judge(maxRatio float64) {
	s.MaxRatio = maxRatio
	s.Complete = true
	for i := range s.Runs {
		s.Complete = s.Complete && s.Runs[i].Complete()
	}
	s.Summaries = summarize(s.Runs)
	lo, hi := s.Summaries[0], s.Summaries[len(s.Summaries)-1]
	if lo.RedisUsPerXadd > 0 && lo.RedisUsFirstHalf > 0 {
		s.Ratio = hi.RedisUsPerXadd / lo.RedisUsPerXadd
		s.SteadyRatio = hi.RedisUsFirstHalf / lo.RedisUsFirstHalf
	}
	s.Pass = s.Complete && s.SteadyRatio > 0 && s.SteadyRatio <= maxRatio
}

func (s *Sweep) writeSummaries(w io.Writer) {
	fmt.Fprintf(w, "\nmedian over %d round(s):\n", s.Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "channels\tRedis CPU µs/XADD\t(1st half | 2nd half)\tkill recovery Redis CPU\tbare XADD\tnode+publisher CPU µs/XADD\t")
	for _, m := range s.Summaries {
		fmt.Fprintf(tw, "%d\t%.1f\t(%.1f | %.1f)\t%.0f ms\t%s\t%.1f\t\n", m.Channels, m.RedisUsPerXadd,
			m.RedisUsFirstHalf, m.RedisUsSecondHalf, m.RecoveryMs, orDash(m.BareUsPerXadd), m.NodeUsPerXadd)
	}
	tw.Flush()
}

func (s *Sweep) writeVerdict(w io.Writer) {
	lo, hi := s.Summaries[0], s.Summaries[len(s.Summaries)-1]
	fmt.Fprintf(w, "\nRedis CPU per XADD, %d channels over %d: %.2f in steady state, before the kill (bound %.2f); %.2f over the whole window, the kill's recovery (%.0f ms of Redis CPU at %d channels) included\n",
		hi.Channels, lo.Channels, s.SteadyRatio, s.MaxRatio, s.Ratio, hi.RecoveryMs, hi.Channels)
	fmt.Fprintf(w, "delivery exactly once in every run, pub/sub connection killed halfway: %v\n", s.Complete)
	verdict := "FAIL"
	if s.Pass {
		verdict = "PASS"
	}
	fmt.Fprintln(w, verdict)
}

// loadAverage returns the 1, 5 and 15 minute load averages, when the system
// tells them: other work on the machine shows in the measurement.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
