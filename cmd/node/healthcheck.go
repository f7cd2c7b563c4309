package main

import (
	"context"
	"flag"
	"os"

	"github.com/pushcluster/pushcluster/internal/healthcheck"
	"github.com/pushcluster/pushcluster/pkg/node"
)

// runHealthcheck is `node healthcheck`: it exits 0 when the node on this
// host answers its probe path with 200, else 1. It reads the node's listen
// address as the node does (-listen, else PUSH_LISTEN), so it needs no
// flags inside the node's own container.
func runHealthcheck(args []string) error {
	fs := flag.NewFlagSet("node healthcheck", flag.ContinueOnError)
	listen := fs.String("listen", node.DefaultListen, "the node's HTTP listen address (env PUSH_LISTEN)")
	path := fs.String("path", healthcheck.DefaultPath, "probe path: /healthz (serving) or /readyz (ready for clients)")
	timeout := fs.Duration("timeout", healthcheck.DefaultTimeout, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if v, ok := os.LookupEnv(envName("listen")); ok && !flagGiven(fs, "listen") {
		*listen = v
	}
	u, err := healthcheck.URL(*listen, *path)
	if err != nil {
		return err
	}
	return healthcheck.Probe(context.Background(), u, *timeout)
}

func flagGiven(fs *flag.FlagSet, name string) (given bool) {
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
