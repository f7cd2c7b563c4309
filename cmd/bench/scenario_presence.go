package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/pushcluster/pushcluster/internal/backoff"
	"github.com/pushcluster/pushcluster/internal/hist"
)

// Presence layout: every client is on the hot channel; one in
// presenceAlsoEvery is also on one of presenceOthers other channels, so that
// each node has connections a presence answer must leave out.
const (
	presenceAlsoEvery = 4
	presenceOthers    = 8
	presenceIdleCPU   = 2 * time.Second // idle CPU measured before each client count's questions
	clientsPageLimit  = 10_000          // GET /api/clients?limit= its maximum
)

// presence times the cluster-wide questions on a cluster of idle clients:
// who is on a channel (GET /api/presence) and who is connected (GET
// /api/clients), each asked of the first node, which asks the others. It
// measures at each of -steps, then at -sse plus -ws clients, opened
// round-robin over the nodes.
func (r *runner) presence(ctx context.Context) error {
	cfg := r.cfg
	cl, err := r.startCluster(ctx, cfg.DrainTimeout)
	if err != nil {
		return err
	}
	defer cl.stop()
	var bases []*url.URL
	for _, n := range cl.nodes {
		u, _ := url.Parse(n.url())
		bases = append(bases, u)
	}
	plan := newChannelPlan(ChannelSpec{Mode: ModeHot}, cfg.ChannelBase+"-presence")
	others := make([]string, presenceOthers)
	for k := range others {
		others[k] = fmt.Sprintf("%s-presence-%d", cfg.ChannelBase, k)
	}
	var phases []*phase
	defer func() {
		for _, ph := range phases {
			ph.close()
		}
	}()
	sse, ws, onOther := 0, 0, 0
	for _, n := range append(slices.Clone(cfg.Steps), cfg.clients()) {
		wantSSE := n * cfg.SSE / cfg.clients()
		ph, err := r.newPhase(ctx, bases[0].String(), wantSSE-sse, n-wantSSE-ws, plan)
		if err != nil {
			return err
		}
		phases = append(phases, ph)
		ph.env.target.route(bases...)
		for _, c := range ph.fleet.clients {
			if g := sse + ws + c.i; g%presenceAlsoEvery == presenceAlsoEvery-1 {
				k := g / presenceAlsoEvery % presenceOthers
				c.also = []string{others[k]}
				if k == 0 {
					onOther++
				}
			}
		}
		r.step("opening %d more idle clients (%d in all) round-robin over %d nodes", len(ph.fleet.clients), n, len(bases))
		ph.fleet.start(ctx, cfg.Ramp)
		if err := ph.fleet.waitReady(ctx, cfg.ReadyTimeout); err != nil {
			return err
		}
		sse, ws = wantSSE, n-wantSSE
		backoff.Sleep(ctx, cfg.Settle)
		questions := []question{
			{name: "presence, the channel everyone is on", path: "/api/presence?channel=" + url.QueryEscape(plan.names[0]), expected: n},
			{name: "presence, a channel 1 in 32 is on", path: "/api/presence?channel=" + url.QueryEscape(others[0]), expected: onOther},
			{name: "presence count, the channel everyone is on", path: "/api/presence?count=1&channel=" + url.QueryEscape(plan.names[0]), expected: n, count: true},
			{name: fmt.Sprintf("clients?limit=%d", clientsPageLimit), path: fmt.Sprintf("/api/clients?limit=%d", clientsPageLimit), expected: min(n, clientsPageLimit)},
		}
		if err := r.askAll(ctx, cl, n, questions); err != nil {
			return err
		}
	}
	return nil
}

// question is one cluster query and how many clients its answer must list,
// or count.
type question struct {
	name, path string
	expected   int
	count      bool // the answer counts clients rather than listing them
}

// askAll measures the nodes' idle CPU, then asks each question Queries
// times of the first node, one at a time.
func (r *runner) askAll(ctx context.Context, cl *nodeCluster, clients int, qs []question) error {
	idle, err := idleCPU(ctx, cl.pids(), presenceIdleCPU)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	defer hc.CloseIdleConnections()
	for _, q := range qs {
		r.step("%d clients: asking %q %d times", clients, q.path, r.cfg.Queries)
		row, err := r.ask(ctx, hc, cl, q, idle)
		if err != nil {
			return err
		}
		row.Clients = clients
		r.report.Presence = append(r.report.Presence, row)
	}
	return nil
}

func (r *runner) ask(ctx context.Context, hc *http.Client, cl *nodeCluster, q question, idle []float64) (PresenceRow, error) {
	row := PresenceRow{Question: q.name, Expected: q.expected}
	meters := make([]*cpuMeter, len(cl.nodes))
	for i, pid := range cl.pids() {
		var err error
		if meters[i], err = startCPU(pid); err != nil {
			return row, err
		}
	}
	var lat hist.Histogram
	start := time.Now()
	for range r.cfg.Queries {
		t := time.Now()
		body, err := get(ctx, hc, cl.nodes[0].url()+q.path)
		lat.Record(time.Since(t).Nanoseconds())
		if err != nil {
			row.Failed++
			r.cfg.Logger.Debug("query failed", "path", q.path, "err", err)
			continue
		}
		listed, partial, err := parseAnswer(body, q.count)
		if err != nil {
			row.Failed++
			continue
		}
		row.Bytes, row.Listed = len(body), listed
		if partial {
			row.Partial++
		}
	}
	elapsed := time.Since(start).Seconds()
	for i, m := range meters {
		used, err := m.used()
		if err != nil {
			return row, err
		}
		us := (used.Seconds() - idle[i]*elapsed) * 1e6 / float64(r.cfg.Queries)
		if i == 0 {
			row.AskedCPUUs = us
		} else {
			row.PeersCPUUs += us
		}
	}
	row.LatencyMs = percentiles(lat.Snapshot())
	if row.Listed != q.expected {
		r.note("%s: the last answer listed %d clients, want %d", q.name, row.Listed, q.expected)
	}
	return row, nil
}

// parseAnswer reads how many clients an answer lists, or counts.
func parseAnswer(body []byte, count bool) (clients int, partial bool, err error) {
	if count {
		var a struct {
			Clients int  `json:"clients"`
			Partial bool `json:"partial"`
		}
		err = json.Unmarshal(body, &a)
		return a.Clients, a.Partial, err
	}
	var a struct {
		Clients []struct{} `json:"clients"`
		Partial bool       `json:"partial"`
	}
	err = json.Unmarshal(body, &a)
	return len(a.Clients), a.Partial, err
}

// get returns the body of a 200 answer.
func get(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("bench: %s answered %s", u, resp.Status)
	}
	return body, err
}

// idleCPU returns each process's CPU seconds per second over d.
func idleCPU(ctx context.Context, pids []int, d time.Duration) ([]float64, error) {
	meters := make([]*cpuMeter, len(pids))
	for i, pid := range pids {
		var err error
		if meters[i], err = startCPU(pid); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	backoff.Sleep(ctx, d)
	out := make([]float64, len(pids))
	for i, m := range meters {
		used, err := m.used()
		if err != nil {
			return nil, err
		}
		out[i] = used.Seconds() / time.Since(start).Seconds()
	}
	return out, nil
}
