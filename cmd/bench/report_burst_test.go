package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestSpreadOf(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   []float64
		want Spread
	}{
		{nil, Spread{}},
		{[]float64{5}, Spread{5, 5, 5}},
		{[]float64{9, 1, 4}, Spread{4, 1, 9}},
		{[]float64{4, 1, 9, 2}, Spread{3, 1, 9}},
	} {
		if got := spreadOf(c.in); got != c.want {
			t.Errorf("spreadOf(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestBurstBound(t *testing.T) {
	t.Parallel()
	if got, want := burstBound(1<<20, 2000), float64(3<<20+2000*4096); got != want {
		t.Fatalf("bound %v, want %v", got, want)
	}
	if got := burstBound(-1<<20, 10); got != 10*4096 {
		t.Fatalf("a shrinking bare relay gave bound %v", got)
	}
}

func burstSample(growth int64, deliverMs, cpuUs float64) BurstSample {
	return BurstSample{GrowthBytes: growth, DeliverMs: deliverMs, CPUUsPerDelivery: cpuUs, Expected: 20, Delivered: 20}
}

func sampleBurstRow() BurstRow {
	row := BurstRow{Transport: transportSSE, Subscribers: 10, Burst: BurstShape{Count: 2, Bytes: 1024}, Rounds: []BurstRound{
		{Node: burstSample(100<<10, 40, 6), Bare: burstSample(10<<10, 20, 2)},
		{Node: burstSample(300<<10, 60, 9), Bare: burstSample(20<<10, 10, 3)},
		{Node: burstSample(200<<10, 50, 3), Bare: burstSample(30<<10, 30, 1)},
	}}
	row.summarize()
	return row
}

func TestBurstRowSummary(t *testing.T) {
	t.Parallel()
	row := sampleBurstRow()
	if row.Node.GrowthBytes != (Spread{200 << 10, 100 << 10, 300 << 10}) || row.Bare.DeliverMs != (Spread{20, 10, 30}) {
		t.Fatalf("summaries %+v / %+v", row.Node, row.Bare)
	}
	if row.GrowthRatio != 10 || row.DeliverRatio != 2.5 || row.CPURatio != 3 {
		t.Fatalf("ratios %v %v %v", row.GrowthRatio, row.DeliverRatio, row.CPURatio)
	}
	// 3 × 20 KiB + 10 × 4 KiB = 100 KiB, below the node's 200 KiB.
	if row.BoundBytes != 100<<10 || row.RSSPass || !row.OncePass || !row.BareOnce {
		t.Fatalf("bound %v, rss %v, once %v, bare once %v", row.BoundBytes, row.RSSPass, row.OncePass, row.BareOnce)
	}
	if row.Node.Delivered != 60 || row.Node.Expected != 60 {
		t.Fatalf("delivered %d of %d", row.Node.Delivered, row.Node.Expected)
	}
}

func TestBurstOnceInOrder(t *testing.T) {
	t.Parallel()
	ok := burstSample(0, 1, 1)
	if !ok.onceInOrder() {
		t.Fatal("a complete burst failed")
	}
	for name, broke := range map[string]func(*BurstSample){
		"missing":   func(s *BurstSample) { s.Delivered--; s.Missing++ },
		"duplicate": func(s *BurstSample) { s.Duplicates++ },
		"skip":      func(s *BurstSample) { s.Skips++ },
		"gap":       func(s *BurstSample) { s.Gaps++ },
		"timeout":   func(s *BurstSample) { s.TimedOut = true },
	} {
		s := ok
		broke(&s)
		if s.onceInOrder() {
			t.Errorf("%s passed", name)
		}
	}
	row := sampleBurstRow()
	row.Rounds[1].Node.Skips = 1
	row.summarize()
	if row.OncePass || !row.BareOnce {
		t.Fatalf("a skip in one round: once %v, bare once %v", row.OncePass, row.BareOnce)
	}
}

func TestBurstTableAndJSON(t *testing.T) {
	t.Parallel()
	r := &Report{Scenario: ScenarioBurst, Settings: Settings{SSE: 10, Bursts: []string{"2x1024"}, Rounds: 3}, Bursts: []BurstRow{sampleBurstRow()}}
	var b bytes.Buffer
	if err := r.writeTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sse × 10, 2 × 1.0 KiB", "+200.0 KiB (100.0 KiB–300.0 KiB)", "10.0×", "RSS ≤ 100.0 KiB: FAIL", "once, in order: PASS"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := r.writeJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back.Bursts) != 1 || len(back.Bursts[0].Rounds) != 3 {
		t.Fatalf("JSON round trip: %v, %+v", err, back.Bursts)
	}
}
