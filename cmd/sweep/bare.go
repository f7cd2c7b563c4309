package main

import (
	"context"
	"fmt"
	"os"
)

// measureBare publishes the same load to n channels that no node watches,
// and returns Redis CPU µs per XADD: what the XADDs cost by themselves with
// this many streams, the floor under the node's cost.
func measureBare(ctx context.Context, cfg Config, srv *server, n int) (us float64, err error) {
	name := fmt.Sprintf("sweep%d.%d.bare", os.Getpid(), n)
	defer func() {
		if cerr := srv.clean(context.WithoutCancel(ctx), name+":"); cerr != nil && err == nil {
			err = fmt.Errorf("failed to delete the bare run's keys: %w", cerr)
		}
	}()
	pub := srv.client(name+"-pub", 4)
	defer pub.Close()
	_, keys := channelNames(name+":", n)
	p := newPublisher(pub, keys, cfg.Rate)
	if cfg.Seed {
		p.seed(ctx)
	}
	progress(cfg, "channels=%d: publishing to streams no node watches", n)
	before, err := readUsage(ctx, srv)
	if err != nil {
		return 0, err
	}
	load := p.run(ctx, cfg.Duration, func(context.Context) {})
	after, err := readUsage(ctx, srv)
	if err != nil {
		return 0, err
	}
	return (after.CPU - before.CPU) * 1e6 / float64(max(load.Sent, 1)), nil
}
