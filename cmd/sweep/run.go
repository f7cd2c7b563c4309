package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushcluster/pushcluster/internal/waitfor"
	"github.com/pushcluster/pushcluster/pkg/hub"
	"github.com/pushcluster/pushcluster/pkg/store"
	"github.com/redis/go-redis/v9"
)

// Waits while setting up and draining a run.
const (
	notifyTimeout = 30 * time.Second
	settleTimeout = 120 * time.Second
	quietFor      = 500 * time.Millisecond
	pollEvery     = 20 * time.Millisecond
)

// node is the hub under measurement, with its own Redis client and its
// subscribers, running until Close.
type node struct {
	name  string // client name of the hub's connections
	rdb   redis.UniversalClient
	hub   *hub.Hub
	stop  context.CancelFunc
	done  chan struct{}
	conns []*countingConn
	tally tally
}

func startNode(ctx context.Context, cfg Config, srv *server, name string, workers int) (*node, error) {
	rdb := srv.client(name, workers+8)
	h, bell, err := newHub(cfg, srv, rdb, name+":")
	if err != nil {
		rdb.Close()
		return nil, err
	}
	n := &node{name: name, rdb: rdb, hub: h, done: make(chan struct{})}
	runCtx, stop := context.WithCancel(ctx)
	n.stop = stop
	go func() {
		defer close(n.done)
		var wg sync.WaitGroup
		wg.Go(func() { bell.Run(runCtx, h) })
		h.Run(runCtx)
		wg.Wait()
	}()
	return n, nil
}

// newHub builds a hub on its doorbell, as the node does.
func newHub(cfg Config, srv *server, rdb redis.UniversalClient, prefix string) (*hub.Hub, *store.Doorbell, error) {
	st, err := store.New(store.Config{Client: rdb, Prefix: prefix})
	if err != nil {
		return nil, nil, err
	}
	bell, err := store.NewDoorbell(store.DoorbellConfig{Store: st, DB: srv.opt.DB, Node: "sweep", Logger: cfg.Logger})
	if err != nil {
		return nil, nil, err
	}
	h, err := hub.New(hub.Config{Store: st, Bell: bell, Logger: cfg.Logger})
	return h, bell, err
}

// Close stops the hub, waits for it, and closes its client.
func (n *node) Close() {
	n.stop()
	<-n.done
	n.rdb.Close()
}

// join subscribes one counting connection to each channel from now, with
// workers joining concurrently, and returns how long it took.
func (n *node) join(ctx context.Context, channels []string, workers int) (time.Duration, error) {
	start := time.Now()
	n.conns = make([]*countingConn, len(channels))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(channels) && errs[w] == nil; i = int(next.Add(1) - 1) {
				n.conns[i] = newCountingConn(&n.tally, channels[i])
				errs[w] = n.subscribe(ctx, n.conns[i])
			}
		}()
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

func (n *node) subscribe(ctx context.Context, c *countingConn) error {
	s, err := n.hub.Join(ctx, c, c.channel, nil)
	if err != nil {
		return err
	}
	return n.hub.Attach(ctx, s)
}

// settle waits until the doorbell's pub/sub connections (one per shard)
// hold every subscription (channels plus a probe per shard) and the hub
// has stopped reading: each confirmed subscription rings its channel once.
func (n *node) settle(ctx context.Context, srv *server, channels int) error {
	subscribed := func() bool {
		cs, err := pubsubClients(ctx, srv, n.name)
		subs := 0
		for _, c := range cs {
			subs += c.Subs
		}
		return err == nil && len(cs) == len(srv.shards) && subs == channels+len(srv.shards)
	}
	if err := waitfor.Until(ctx, settleTimeout, 100*time.Millisecond, subscribed); err != nil {
		return fmt.Errorf("doorbell did not subscribe to %d channels: %w", channels, err)
	}
	return n.quiet(ctx, settleTimeout)
}

// quiet waits until the hub has made no read for quietFor.
func (n *node) quiet(ctx context.Context, timeout time.Duration) error {
	last, since := n.hub.Stats().Reads, time.Now()
	return waitfor.Until(ctx, timeout, pollEvery, func() bool {
		if r := n.hub.Stats().Reads; r != last {
			last, since = r, time.Now()
		}
		return time.Since(since) >= quietFor
	})
}

// sample is what a publishing window is measured between.
type sample struct {
	redis redisUsage
	self  time.Duration // CPU of this process: hub and publisher
	reads uint64        // the hub's pipelined reads
}

func takeSample(ctx context.Context, srv *server, n *node) (sample, error) {
	u, err := readUsage(ctx, srv)
	return sample{redis: u, self: processCPU(), reads: n.hub.Stats().Reads}, err
}

// measure runs one point of the sweep: n channels of interest.
func measure(ctx context.Context, cfg Config, srv *server, n int) (r Result, err error) {
	r.Channels = n
	name := fmt.Sprintf("sweep%d.%d", os.Getpid(), n)
	defer func() {
		if cerr := srv.clean(context.WithoutCancel(ctx), name+":"); cerr != nil && err == nil {
			err = fmt.Errorf("failed to delete the run's keys: %w", cerr)
		}
	}()
	nd, err := startNode(ctx, cfg, srv, name, cfg.JoinWorkers)
	if err != nil {
		return r, err
	}
	defer nd.Close()
	if err := waitfor.Until(ctx, notifyTimeout, pollEvery, nd.hub.Notified); err != nil {
		return r, fmt.Errorf("keyspace notifications never arrived: %w", err)
	}
	channels, keys := channelNames(name+":", n)
	progress(cfg, "channels=%d: joining", n)
	joinTime, err := nd.join(ctx, channels, cfg.JoinWorkers)
	if err != nil {
		return r, fmt.Errorf("failed to join: %w", err)
	}
	r.JoinSeconds = joinTime.Seconds()
	progress(cfg, "channels=%d: joined in %s; waiting for the doorbell", n, joinTime.Round(time.Millisecond))
	if err := nd.settle(ctx, srv, n); err != nil {
		return r, err
	}
	pub := srv.client(name+"-pub", 4)
	defer pub.Close()
	p := newPublisher(pub, keys, cfg.Rate)
	if cfg.Seed {
		if err := seed(ctx, cfg, nd, p, &r); err != nil {
			return r, err
		}
	}
	progress(cfg, "channels=%d: publishing %d XADD/s for %s", n, cfg.Rate, cfg.Duration)
	return r, publishAndCheck(ctx, cfg, srv, nd, p, &r)
}

// seed gives every channel one entry and waits until the hub has delivered
// them all and gone quiet.
func seed(ctx context.Context, cfg Config, nd *node, p *publisher, r *Result) error {
	progress(cfg, "channels=%d: seeding one entry per channel", r.Channels)
	p.seed(ctx)
	r.Seeded = p.sent
	if p.failed > 0 {
		return fmt.Errorf("%d seeding XADDs failed", p.failed)
	}
	if err := nd.drain(ctx, p.sent, settleTimeout); err != nil {
		return fmt.Errorf("seed entries not delivered: %w", err)
	}
	return nil
}

// publishAndCheck measures the publishing window, killing the doorbell's
// connection halfway, then waits for delivery and fills r.
func publishAndCheck(ctx context.Context, cfg Config, srv *server, nd *node, p *publisher, r *Result) error {
	var s [3]sample // start, halfway (before the kill), end
	var errs [4]error
	s[0], errs[0] = takeSample(ctx, srv, nd)
	load := p.run(ctx, cfg.Duration, func(ctx context.Context) {
		s[1], errs[1] = takeSample(ctx, srv, nd)
		r.Killed, errs[2] = killPubSub(ctx, srv, nd.name)
	})
	s[2], errs[3] = takeSample(ctx, srv, nd)
	if err := errors.Join(errs[:]...); err != nil {
		return err
	}
	progress(cfg, "channels=%d: sent %d; waiting for delivery", r.Channels, load.Sent)
	start := time.Now()
	nd.drain(ctx, p.sent, cfg.DrainTimeout) // what did not arrive is reported
	r.DrainSeconds = time.Since(start).Seconds()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.fill(load, s, nd, p)
	return nil
}

// drain waits until total entries have been delivered, then until the hub
// stops reading: late duplicates would come from reads still under way.
func (n *node) drain(ctx context.Context, total int64, timeout time.Duration) error {
	err := waitfor.Until(ctx, timeout, pollEvery, func() bool { return n.tally.delivered() >= total })
	if err != nil {
		return err
	}
	return n.quiet(ctx, timeout)
}

// channelNames returns n channel names and their stream keys under prefix.
func channelNames(prefix string, n int) (channels, keys []string) {
	channels, keys = make([]string, n), make([]string, n)
	for i := range n {
		channels[i] = fmt.Sprintf("c%d", i)
		keys[i] = prefix + channels[i]
	}
	return channels, keys
}

func progress(cfg Config, format string, args ...any) {
	fmt.Fprintf(cfg.Progress, format+"\n", args...)
}
