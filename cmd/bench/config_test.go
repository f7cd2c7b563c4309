package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestClusterScenarioFlags(t *testing.T) {
	t.Parallel()
	cfg, err := parseFlags([]string{"-scenario", "presence", "-redis-url", "redis://127.0.0.1:1/0",
		"-sse", "500", "-ws", "500", "-steps", "100, 400", "-node-ips", "127.0.0.201-127.0.0.203"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Steps, []int{100, 400}) || len(cfg.NodeIPs) != 3 || cfg.NodeIPs[0].String() != "127.0.0.201" ||
		cfg.GossipPort != DefaultGossipPort || cfg.DrainTimeout != DefaultDrainTimeout || cfg.DrainBaseline != DefaultDrainBaseline {
		t.Fatalf("parsed %+v", cfg)
	}
	if len(cfg.Sources) == 0 {
		t.Fatal("a cluster scenario spreads its clients over loopback sources")
	}
}

func TestClusterScenarioValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-scenario", "drain"}, "needs -redis-url"},
		{[]string{"-scenario", "drain", "-redis-url", "redis://x/0", "-node-ips", "127.0.0.101"}, "at least two"},
		{[]string{"-scenario", "drain", "-redis-url", "redis://x/0", "-node-ips", "10.0.0.1,10.0.0.2"}, "not a loopback"},
		{[]string{"-scenario", "drain", "-redis-url", "redis://x/0", "-node-pid", "1"}, "-node-pid does not apply"},
		{[]string{"-scenario", "drain", "-redis-url", "redis://x/0", "-drain-timeout", "0s"}, "-drain-timeout"},
		{[]string{"-scenario", "presence", "-redis-url", "redis://x/0", "-sse", "10", "-steps", "5,3"}, "-steps must increase"},
		{[]string{"-scenario", "presence", "-redis-url", "redis://x/0", "-sse", "10", "-steps", "10"}, "-steps must increase"},
		{[]string{"-scenario", "presence", "-steps", "a"}, "bad -steps"},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
}
