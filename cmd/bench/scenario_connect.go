package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// connectWorkers is how many clients connect at once in the connect
// scenario: enough to keep the node busy, few enough that the tool's own
// CPU stays a small part of the machine's.
const connectWorkers = 32

// ConnectRow is one variant of the node in the connect scenario: what a
// connect costs it with a feature on, against the same node without.
type ConnectRow struct {
	Variant string `json:"variant"`
	// Connects is how many SSE connections were made (each: connect, the
	// welcome, close) per round.
	Connects int `json:"connects"`
	// PerSecond, CPUUsPerConnect and RedisCommandsPerConnect are over the
	// rounds.
	PerSecond               Spread `json:"connects_per_second"`
	CPUUsPerConnect         Spread `json:"node_cpu_us_per_connect"`
	RedisCommandsPerConnect Spread `json:"redis_commands_per_connect"`
	Failed                  int64  `json:"failed"`
}

// connectVariants are the node's configurations the scenario compares:
// plain, with lifecycle events, with a connect hook.
var connectVariants = []string{"plain", "events", "connect-hook"}

// connectCost measures connects per second, node CPU and Redis commands
// per connect, for each variant, the variants alternating round by round
// so that the machine's noise falls on all alike.
func (r *runner) connectCost(ctx context.Context) error {
	cfg := r.cfg
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	hook, err := startHookBackend()
	if err != nil {
		return err
	}
	defer hook.Close()
	type sample struct{ perSec, cpu, cmds float64 }
	samples := map[string][]sample{}
	failed := map[string]int64{}
	n := cfg.SSE
	for round := range cfg.Rounds {
		for _, v := range connectVariants {
			var extra []string
			switch v {
			case "events":
				extra = []string{"-events-stream", fmt.Sprintf("bench-events-%d-%d", r.run, round)}
			case "connect-hook":
				extra = []string{"-connect-hook", "http://" + hook.Addr().String() + "/connect"}
			}
			base, pid, stop, err := r.openNodeWith(ctx, extra...)
			if err != nil {
				return err
			}
			r.step("round %d, %s: %d connects to %s (pid %d)", round+1, v, n, base, pid)
			s, f, err := r.connectRound(ctx, base, pid, rdb, n)
			stop()
			if err != nil {
				return err
			}
			samples[v] = append(samples[v], s)
			failed[v] += f
		}
	}
	for _, v := range connectVariants {
		row := ConnectRow{Variant: v, Connects: n, Failed: failed[v]}
		var per, cpu, cmds []float64
		for _, s := range samples[v] {
			per, cpu, cmds = append(per, s.perSec), append(cpu, s.cpu), append(cmds, s.cmds)
		}
		row.PerSecond, row.CPUUsPerConnect, row.RedisCommandsPerConnect = spreadOf(per), spreadOf(cpu), spreadOf(cmds)
		r.report.Connects = append(r.report.Connects, row)
	}
	return nil
}

// connectRound makes n connections to base, connectWorkers at a time,
// each until its welcome, and returns the rate, pid's CPU per connect and
// Redis commands per connect (INFO commandstats, the tool's INFO left out).
func (r *runner) connectRound(ctx context.Context, base string, pid int, rdb *redis.Client, n int) (s struct{ perSec, cpu, cmds float64 }, failed int64, err error) {
	ph, err := r.newPhase(ctx, base, 0, 0, newChannelPlan(ChannelSpec{Mode: ModeHot}, r.cfg.ChannelBase+"-connect"))
	if err != nil {
		return s, 0, err
	}
	defer ph.close()
	time.Sleep(500 * time.Millisecond) // the node's start-up work settles
	before, err := readRedisStats(ctx, rdb)
	if err != nil {
		return s, 0, err
	}
	cpu, err := startCPU(pid)
	if err != nil {
		return s, 0, err
	}
	var next, fails atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range connectWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := connectOnce(ctx, ph.env.target, i, ph.env.plan.names[0], r.cfg.ConnectTimeout); err != nil {
					fails.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	// The work a connect leaves behind (lifecycle events recorded in
	// batches) counts too: wait until Redis has gone quiet.
	after, err := quietRedis(ctx, rdb)
	if err != nil {
		return s, 0, err
	}
	used, err := cpu.used()
	if err != nil {
		return s, 0, err
	}
	cmds := callsBetween(before, after)
	ok := float64(int64(n) - fails.Load())
	s.perSec = ok / elapsed.Seconds()
	s.cpu = ratio(float64(used.Microseconds()), ok)
	s.cmds = ratio(float64(cmds), ok)
	return s, fails.Load(), nil
}

// callsBetween counts the commands Redis ran from a to b, the tool's INFO
// left out.
func callsBetween(a, b redisStats) int64 {
	var n int64
	for name, c := range b.calls {
		if name != "info" {
			n += c - a.calls[name]
		}
	}
	return n
}

// quietRedis reads Redis's counts until two reads a quarter second apart
// show no command run between them (the node's background probes aside:
// at most a handful), for up to 15 s.
func quietRedis(ctx context.Context, rdb *redis.Client) (redisStats, error) {
	last, err := readRedisStats(ctx, rdb)
	for deadline := time.Now().Add(15 * time.Second); err == nil && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		var now redisStats
		if now, err = readRedisStats(ctx, rdb); err != nil {
			break
		}
		if callsBetween(last, now) <= 3 {
			return now, nil
		}
		last = now
	}
	return last, err
}

// connectOnce opens one SSE stream to channel, reads to its welcome, and
// closes it.
func connectOnce(ctx context.Context, t *target, i int, channel string, timeout time.Duration) error {
	st, err := t.dial(ctx, transportSSE, i, []string{channel}, "", time.Now().Add(timeout))
	if err != nil {
		return err
	}
	defer st.close()
	for {
		ev, err := st.next()
		if err != nil {
			return err
		}
		if ev.kind == evReady {
			return nil
		}
		if ev.kind == evError {
			return fmt.Errorf("bench: %s", ev.data)
		}
	}
}

// startHookBackend runs the connect hook of the connect-hook variant: it
// admits everyone to every channel at once, so that what is measured is
// the node's side of a hook call.
func startHookBackend() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"user":"bench","channels":["*"]}`)
	})}
	go srv.Serve(ln)
	return ln, nil
}

func writeConnects(w io.Writer, rows []ConnectRow) {
	fmt.Fprintf(w, "connects\tmedian (min–max) over rounds\tthe node alone, with lifecycle events, with a connect hook\n")
	var plain *ConnectRow
	for i := range rows {
		row := &rows[i]
		if row.Variant == "plain" {
			plain = row
		}
		vs := ""
		if plain != nil && row != plain {
			vs = fmt.Sprintf("; %.2f× the CPU and %+.1f Redis commands per connect of plain",
				ratio(row.CPUUsPerConnect.Median, plain.CPUUsPerConnect.Median),
				row.RedisCommandsPerConnect.Median-plain.RedisCommandsPerConnect.Median)
		}
		fmt.Fprintf(w, "  %s\t%.0f connects/s (%.0f–%.0f)\t%.0f µs CPU per connect, %.2f Redis commands per connect, %d failed%s\n",
			row.Variant, row.PerSecond.Median, row.PerSecond.Min, row.PerSecond.Max,
			row.CPUUsPerConnect.Median, row.RedisCommandsPerConnect.Median, row.Failed, vs)
	}
}
