package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// Channel modes.
const (
	ModeHot    = "hot"
	ModeMany   = "many"
	ModeSkewed = "skewed"
)

// zipfExponent shapes the skewed mode: channel k (from 0) has weight
// 1/(k+1)^s, so with s = 1 the busiest of 100 channels holds ~19% of the
// clients and the quietest ~0.2%.
const zipfExponent = 1.0

// ChannelSpec is the -channels flag: "hot", "many:N" or "skewed:N".
type ChannelSpec struct {
	Mode string
	N    int
}

// String renders the spec as the flag takes it.
func (s *ChannelSpec) String() string {
	if s.Mode == ModeHot || s.Mode == "" {
		return ModeHot
	}
	return fmt.Sprintf("%s:%d", s.Mode, s.N)
}

// Set parses the flag.
func (s *ChannelSpec) Set(v string) error {
	mode, n, hasN := strings.Cut(v, ":")
	switch {
	case mode == ModeHot && !hasN:
		*s = ChannelSpec{Mode: ModeHot, N: 1}
		return nil
	case (mode == ModeMany || mode == ModeSkewed) && hasN:
		count, err := strconv.Atoi(n)
		if err != nil || count < 1 {
			return fmt.Errorf("bad channel count %q", n)
		}
		*s = ChannelSpec{Mode: mode, N: count}
		return nil
	}
	return fmt.Errorf("want hot, many:N or skewed:N, not %q", v)
}

// channelPlan names the channels of a run and says which channel each
// client joins and each message goes to.
type channelPlan struct {
	spec  ChannelSpec
	names []string
	cdf   []float64 // cumulative weights, the last one 1; nil means uniform
}

func newChannelPlan(spec ChannelSpec, base string) *channelPlan {
	p := &channelPlan{spec: spec}
	if spec.Mode == ModeHot || spec.Mode == "" {
		p.names = []string{base + "-hot"}
		return p
	}
	p.names = make([]string, spec.N)
	for i := range p.names {
		p.names[i] = fmt.Sprintf("%s-%d", base, i)
	}
	if spec.Mode == ModeSkewed {
		p.cdf = zipfCDF(spec.N, zipfExponent)
	}
	return p
}

// zipfCDF returns the cumulative distribution of weights 1/(k+1)^s.
func zipfCDF(n int, s float64) []float64 {
	cdf := make([]float64, n)
	var sum float64
	for k := range n {
		sum += 1 / math.Pow(float64(k+1), s)
		cdf[k] = sum
	}
	for k := range cdf {
		cdf[k] /= sum
	}
	cdf[n-1] = 1
	return cdf
}

// forClient returns the channel index of client i: i mod N for many,
// a draw from the distribution for skewed, 0 for hot.
func (p *channelPlan) forClient(i int, rng *rand.Rand) int {
	if p.cdf != nil {
		return p.pick(rng)
	}
	return i % len(p.names)
}

// pick returns the channel index of the next message, drawn from the same
// distribution as the clients.
func (p *channelPlan) pick(rng *rand.Rand) int {
	if p.cdf == nil {
		return rng.IntN(len(p.names))
	}
	return min(sort.SearchFloat64s(p.cdf, rng.Float64()), len(p.cdf)-1)
}

// weight returns the share of draws that channel k gets.
func (p *channelPlan) weight(k int) float64 {
	if p.cdf == nil {
		return 1 / float64(len(p.names))
	}
	if k == 0 {
		return p.cdf[0]
	}
	return p.cdf[k] - p.cdf[k-1]
}
