package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/pushcluster/pushcluster/internal/hist"
)

func sampleReport() *Report {
	var h hist.Histogram
	for v := int64(1); v <= 1000; v++ {
		h.Record(v * 1e6) // 1 … 1000 ms
	}
	return &Report{
		Scenario: ScenarioLoad, Target: "http://127.0.0.1:6788",
		Settings:    Settings{SSE: 2, WS: 1, Channels: "many:3", PublishRate: 10, Payload: 100, Via: ViaXADD},
		Connections: &ConnReport{Target: 3, Established: 3},
		Delivery: &DeliveryReport{
			Published: 10, Deliveries: 29, Expected: 30, Received: 29, Missing: 1, Steady: 3,
			LatencyMs: percentiles(h.Snapshot()),
		},
		Floor:  &FloorReport{Subscribers: 3, Node: FloorSide{CPUUsPerDelivery: 6}, Floor: FloorSide{CPUUsPerDelivery: 2}, Ratio: 3},
		Memory: []MemoryRow{{Transport: transportWS, Connections: 3, NodePerConn: 3072, BarePerConn: 1024, Ratio: 3}},
		Drain: []DrainReport{
			{DrainTimeout: "25s", Clients: 3, Nodes: 3, Closed: 3, SpreadMs: 24_900, Resumed: 3, AllResumedMs: 25_000,
				PeakReconnectsPerSec: 1, ReconnectsPerSec: []int{1, 0, 1, 1}, Redis: RedisWindow{XRange: 40, ReadsPerClient: 0.5}},
			{DrainTimeout: "1ms", Clients: 3, Nodes: 3, Closed: 3, SpreadMs: 2, Resumed: 3, AllResumedMs: 150,
				PeakReconnectsPerSec: 4, ReconnectsPerSec: []int{3}},
		},
		Presence: []PresenceRow{{Clients: 3, Question: "presence, the hot channel", Listed: 3, Expected: 3, Bytes: 2048, AskedCPUUs: 120, PeersCPUUs: 80}},
		Timeline: []second{{T: 1, Connected: 3, Deliveries: 29, P50ms: 1.5, P99ms: 9}, {T: 2, Connected: 3, Deliveries: 30, P50ms: 1.2, P99ms: 4}},
		Notes:    []string{"a <note> & more"},
	}
}

func TestPercentilesInMilliseconds(t *testing.T) {
	t.Parallel()
	p := sampleReport().Delivery.LatencyMs
	near := func(got, want float64) bool {
		return got >= want*(1-hist.RelativeError) && got <= want*(1+hist.RelativeError)
	}
	if p.Count != 1000 || !near(p.P50, 500) || !near(p.P90, 900) || !near(p.P99, 990) || !near(p.P999, 999) || p.Max != 1000 {
		t.Fatalf("percentiles %+v", p)
	}
	if !near(p.Mean, 500.5) {
		t.Fatalf("mean %v", p.Mean)
	}
}

func TestTableHasEverySection(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := sampleReport().writeTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"scenario", "2 SSE + 1 WS", "3/3 established", "latency (ms)", "p99.9",
		"29/30 received", "1 missing", "ratio", "3.00×", "ws × 3", "3.0 KiB", "a <note> & more",
		"-drain-timeout", "last 24.90 s", "all by 0.15 s", "XRANGE 40", "0.500 per client", "0.25× the all-at-once",
		"reconnects per second, 25s", "1 0 1 1", "3 clients, presence, the hot channel", "3/3 listed, 2.0 KiB", "CPU asked 120 µs, others 80 µs",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestJSONRoundTrips(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	r := sampleReport()
	if err := r.writeJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Delivery.Missing != 1 || back.Floor.Ratio != 3 || len(back.Timeline) != 2 || back.Resume != nil ||
		len(back.Drain) != 2 || back.Drain[0].Redis.XRange != 40 || back.Presence[0].Bytes != 2048 {
		t.Fatalf("decoded %+v", back)
	}
	var raw map[string]any
	json.Unmarshal(b.Bytes(), &raw)
	lat := raw["delivery"].(map[string]any)["latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency_ms lacks %q", k)
		}
	}
}

// checkXML parses every token of doc.
func checkXML(t *testing.T, doc []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("invalid XML: %v\n%s", err, doc)
		}
	}
}

func TestSVGIsValidXML(t *testing.T) {
	t.Parallel()
	for name, tl := range map[string][]second{
		"run":   sampleReport().Timeline,
		"empty": nil,
		"flat":  {{T: 1}, {T: 2}},
	} {
		var b bytes.Buffer
		if err := writeSVG(&b, `bench "<&>"`, tl); err != nil {
			t.Fatal(err)
		}
		checkXML(t, b.Bytes())
		lines := 3
		if len(tl) == 0 {
			lines = 0
		}
		if !strings.HasPrefix(b.String(), "<svg") || strings.Count(b.String(), "<polyline") != lines {
			t.Errorf("%s: unexpected chart:\n%s", name, b.String())
		}
	}
}

func TestAxis(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ v, top, step float64 }{{12, 12, 2}, {110, 120, 20}, {0, 1, 1}, {20023, 25000, 5000}, {0.9, 1, 0.2}} {
		if top, step := axis(c.v); math.Abs(top-c.top) > 1e-9 || math.Abs(step-c.step) > 1e-9 {
			t.Errorf("axis(%v) = %v, %v; want %v, %v", c.v, top, step, c.top, c.step)
		}
	}
}

func TestNiceCeil(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.1: 2, 3: 5, 7: 10, 420: 500, 20001: 50000} {
		if got := niceCeil(in); got < want*0.999999 || got > want*1.000001 {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}
