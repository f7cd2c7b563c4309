package main

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestChannelSpecFlag(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]ChannelSpec{
		"hot": {ModeHot, 1}, "many:100": {ModeMany, 100}, "skewed:7": {ModeSkewed, 7},
	} {
		var s ChannelSpec
		if err := s.Set(in); err != nil || s != want || s.String() != in {
			t.Errorf("%q: %+v %v, renders %q", in, s, err, s.String())
		}
	}
	for _, bad := range []string{"", "hot:3", "many", "many:0", "many:-1", "skewed:x", "cold:3"} {
		var s ChannelSpec
		if err := s.Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestHotPutsEveryoneOnOneChannel(t *testing.T) {
	t.Parallel()
	p := newChannelPlan(ChannelSpec{Mode: ModeHot, N: 1}, "bench")
	rng := rand.New(rand.NewPCG(1, 1))
	if len(p.names) != 1 || p.names[0] != "bench-hot" {
		t.Fatalf("names %v", p.names)
	}
	for i := range 100 {
		if p.forClient(i, rng) != 0 || p.pick(rng) != 0 {
			t.Fatal("hot plan chose another channel")
		}
	}
}

func TestManyIsRoundRobinAndUniform(t *testing.T) {
	t.Parallel()
	p := newChannelPlan(ChannelSpec{Mode: ModeMany, N: 10}, "b")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 95 {
		if got := p.forClient(i, rng); got != i%10 {
			t.Fatalf("client %d on channel %d, want %d", i, got, i%10)
		}
	}
	if p.names[3] != "b-3" {
		t.Fatalf("channel 3 named %q", p.names[3])
	}
	checkFrequencies(t, p, rng, p.pick)
}

func TestSkewedFollowsZipf(t *testing.T) {
	t.Parallel()
	p := newChannelPlan(ChannelSpec{Mode: ModeSkewed, N: 50}, "b")
	rng := rand.New(rand.NewPCG(3, 4))
	if w0, w1 := p.weight(0), p.weight(1); math.Abs(w0/w1-2) > 1e-9 {
		t.Fatalf("weights %v, %v: want a ratio of 2 with exponent 1", w0, w1)
	}
	checkFrequencies(t, p, rng, p.pick)
	checkFrequencies(t, p, rng, func(r *rand.Rand) int { return p.forClient(0, r) })
}

// checkFrequencies draws many times and compares each channel's share with
// its weight, within five standard deviations.
func checkFrequencies(t *testing.T, p *channelPlan, rng *rand.Rand, draw func(*rand.Rand) int) {
	t.Helper()
	const draws = 200_000
	counts := make([]int, len(p.names))
	for range draws {
		counts[draw(rng)]++
	}
	var total float64
	for k, n := range counts {
		w := p.weight(k)
		total += w
		sd := math.Sqrt(draws * w * (1 - w))
		if math.Abs(float64(n)-draws*w) > 5*sd+1 {
			t.Errorf("channel %d: %d draws, want %.0f ± %.0f", k, n, draws*w, 5*sd)
		}
	}
	if math.Abs(total-1) > 1e-9 {
		t.Errorf("weights add up to %v", total)
	}
}
