package main

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"time"

	"github.com/pushcluster/pushcluster/internal/backoff"
)

// window is the measured interval, by the publisher's send timestamps (Unix
// nanoseconds): a message belongs to it when start ≤ sent < end.
type window struct {
	start, end atomic.Int64
}

func newWindow() *window {
	w := &window{}
	w.start.Store(math.MaxInt64)
	w.end.Store(math.MaxInt64)
	return w
}

func (w *window) contains(sent int64) bool {
	return sent >= w.start.Load() && sent < w.end.Load()
}

// runEnv is what every client of a run shares.
type runEnv struct {
	cfg    Config
	target *target
	plan   *channelPlan
	m      *metrics
	win    *window
	run    uint32
	// onMessage, when set, sees every message after the client counted it.
	// It runs on the client's goroutine and must not block.
	onMessage func(c *client, st stamp, now time.Time)
	// onReady, when set, sees every subscription, and onEnd every end of a
	// stream that had subscribed, on the client's goroutine; neither may block.
	onReady, onEnd func(c *client, now time.Time)
}

// client is one subscriber that reconnects as a browser would, resuming
// from the last event ID it saw. Its fields belong to its goroutine; the
// atomic ones are also read by the run while it goes on.
type client struct {
	i         int
	transport string
	channel   int
	lastID    string   // resume position
	lastSeq   uint64   // last sequence number received on the channel
	also      []string // more channels to subscribe to, idle ones: nothing is published there

	readyAt   atomic.Int64 // Unix nanos of the latest subscription; 0 before
	waited    atomic.Int64 // nanos of backoff since its latest stream ended
	dropped   atomic.Bool  // lost its stream after the window started
	inWindow  atomic.Int64 // distinct messages of the window received
	target    uint64       // resume scenario: the sequence that means caught up
	caughtUp  time.Duration
	connected bool // subscribed at least once
}

// backoff bounds the wait between a client's connection attempts.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 2 * time.Second
)

// serve keeps the client subscribed until ctx ends.
func (c *client) serve(ctx context.Context, env *runEnv) {
	pace := backoff.New(backoffMin, backoffMax)
	for ctx.Err() == nil {
		subscribed := c.session(ctx, env)
		if ctx.Err() != nil {
			return
		}
		if subscribed {
			c.waited.Store(0)
			if env.onEnd != nil {
				env.onEnd(c, time.Now())
			}
			pace.Reset()
			env.m.reconnects.Add(1)
			if env.win.start.Load() <= time.Now().UnixNano() {
				c.dropped.Store(true)
			}
		}
		wait := pace.Next()
		c.waited.Add(int64(wait))
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// session runs one connection, and reports whether it subscribed.
func (c *client) session(ctx context.Context, env *runEnv) bool {
	start := time.Now()
	channels := append([]string{env.plan.names[c.channel]}, c.also...)
	s, err := env.target.dial(ctx, c.transport, c.i, channels, c.lastID, start.Add(env.cfg.ConnectTimeout))
	if err != nil {
		if ctx.Err() == nil {
			env.m.connectFailed.Add(1)
			env.cfg.Logger.Debug("failed to connect", "client", c.i, "err", err)
		}
		return false
	}
	defer s.close()
	if err := c.awaitReady(s, env, start); err != nil {
		if ctx.Err() == nil {
			env.m.connectFailed.Add(1)
			env.cfg.Logger.Debug("failed to subscribe", "client", c.i, "err", err)
		}
		return false
	}
	env.m.connected.Add(1)
	defer env.m.connected.Add(-1)
	err = c.read(s, env)
	if ctx.Err() == nil {
		env.cfg.Logger.Debug("stream ended", "client", c.i, "err", err)
	}
	return true
}

// awaitReady reads up to the subscription and records how long it took.
func (c *client) awaitReady(s stream, env *runEnv, start time.Time) error {
	for {
		ev, err := s.next()
		if err != nil {
			return err
		}
		if ev.kind == evError {
			return errors.New("bench: server error: " + ev.data)
		}
		if ev.kind != evReady {
			continue
		}
		s.setDeadline(time.Time{})
		now := time.Now()
		env.m.connectTime.Record(now.Sub(start).Nanoseconds())
		if ev.id != "" {
			c.lastID = ev.id
		}
		if !c.connected {
			c.connected = true
			env.m.established.Add(1)
		}
		c.readyAt.Store(now.UnixNano())
		if env.onReady != nil {
			env.onReady(c, now)
		}
		return nil
	}
}

// read handles events until the stream ends.
func (c *client) read(s stream, env *runEnv) error {
	for {
		ev, err := s.next()
		if err != nil {
			return err
		}
		if ev.id != "" {
			c.lastID = ev.id
		}
		switch ev.kind {
		case evMessage:
			c.receive(ev.payload, env)
		case evGap:
			env.m.gaps.Add(1)
		case evError:
			env.m.errors.Add(1)
		}
	}
}

// receive counts one message: latency, order, loss and duplicates.
func (c *client) receive(data []byte, env *runEnv) {
	now := time.Now()
	env.m.deliveries.Add(1)
	st, err := parsePayload(data)
	switch {
	case err != nil:
		env.m.errors.Add(1)
		return
	case st.Run != env.run:
		env.m.foreign.Add(1)
		return
	}
	lat := now.UnixNano() - st.Sent
	env.m.interval.Record(lat)
	if st.Seq <= c.lastSeq {
		env.m.dups.Add(1)
		return
	}
	if c.lastSeq > 0 && st.Seq > c.lastSeq+1 {
		env.m.holes.Add(int64(st.Seq - c.lastSeq - 1))
	}
	c.lastSeq = st.Seq
	if env.win.contains(st.Sent) {
		env.m.latency.Record(lat)
		c.inWindow.Add(1)
	}
	if env.onMessage != nil {
		env.onMessage(c, st, now)
	}
}
