package main

import (
	"context"
	"fmt"

	"github.com/pushcluster/pushcluster/internal/backoff"
)

// idleMemory measures what an idle connection costs the node in resident
// memory, against a bare server holding the same connections: floor-server
// for SSE, ws-baseline-server (coder/websocket) for WebSocket.
func (r *runner) idleMemory(ctx context.Context) error {
	if !r.cfg.StartNode && r.cfg.SSE > 0 && r.cfg.WS > 0 {
		r.note("the node is measured for SSE and then WebSocket without a restart; the second reuses memory the first freed (-start-node restarts it)")
	}
	for _, m := range []struct {
		transport string
		n         int
		bare      string
	}{{transportSSE, r.cfg.SSE, "floor-server"}, {transportWS, r.cfg.WS, "ws-baseline-server"}} {
		if m.n == 0 {
			continue
		}
		row, err := r.idleRow(ctx, m.transport, m.n, m.bare)
		if err != nil {
			return err
		}
		r.report.Memory = append(r.report.Memory, row)
		if m.transport == transportSSE && r.cfg.streams() == transportPoll {
			poll, err := r.pollRow(ctx, m.n, row)
			if err != nil {
				return err
			}
			r.report.Memory = append(r.report.Memory, poll)
		}
	}
	return nil
}

// pollRow measures n long-polling clients, each with a poll held, against
// the node's SSE row.
func (r *runner) pollRow(ctx context.Context, n int, sse MemoryRow) (MemoryRow, error) {
	row := MemoryRow{Transport: transportPoll, Connections: n}
	base, pid, stopNode, err := r.openNode(ctx)
	if err != nil {
		return row, err
	}
	r.step("node: %d long-polling clients waiting on %s (pid %d)", n, base, pid)
	row.NodeBytes, err = r.idleDelta(ctx, base, pid, transportPoll, n)
	stopNode()
	row.BareBytes = sse.NodeBytes
	row.NodePerConn = float64(row.NodeBytes) / float64(n)
	row.BarePerConn = sse.NodePerConn
	row.Ratio = ratio(row.NodePerConn, row.BarePerConn)
	return row, err
}

func (r *runner) idleRow(ctx context.Context, transport string, n int, bare string) (MemoryRow, error) {
	row := MemoryRow{Transport: transport, Connections: n}
	base, pid, stopNode, err := r.openNode(ctx)
	if err != nil {
		return row, err
	}
	r.step("node: %d idle %s connections to %s (pid %d)", n, transport, base, pid)
	row.NodeBytes, err = r.idleDelta(ctx, base, pid, transport, n)
	stopNode()
	if err != nil {
		return row, err
	}
	b, err := startSelf(bare)
	if err != nil {
		return row, err
	}
	r.step("bare: %d idle %s connections to %s %s (pid %d)", n, transport, bare, b.url(), b.pid())
	row.BareBytes, err = r.idleDelta(ctx, b.url(), b.pid(), transport, n)
	if serr := b.stop(); err == nil && serr != nil {
		r.note("%s exited with %v", bare, serr)
	}
	row.NodePerConn = float64(row.NodeBytes) / float64(n)
	row.BarePerConn = float64(row.BareBytes) / float64(n)
	row.Ratio = ratio(row.NodePerConn, row.BarePerConn)
	return row, err
}

// idleDelta opens n connections to base, waits for the settle time, and
// returns how much pid's resident memory grew.
func (r *runner) idleDelta(ctx context.Context, base string, pid int, transport string, n int) (int64, error) {
	over, sse, ws := transport, n, 0
	if transport == transportWS {
		over, sse, ws = transportSSE, 0, n
	}
	before, err := processRSS(pid)
	if err != nil {
		return 0, err
	}
	ph, err := r.newPhaseOver(ctx, base, over, sse, ws, newChannelPlan(r.cfg.Channels, r.cfg.ChannelBase))
	if err != nil {
		return 0, err
	}
	defer ph.close()
	ph.fleet.start(ctx, r.cfg.Ramp)
	if err := ph.fleet.waitReady(ctx, r.cfg.ReadyTimeout); err != nil {
		return 0, err
	}
	backoff.Sleep(ctx, r.cfg.Settle)
	if got := ph.env.m.connected.Load(); got != int64(n) {
		return 0, fmt.Errorf("bench: %d of %d connections still open after settling", got, n)
	}
	after, err := processRSS(pid)
	return after - before, err
}
