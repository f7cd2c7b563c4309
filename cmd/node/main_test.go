package main

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestEnvironmentSetsUnsetFlags(t *testing.T) {
	t.Setenv("PUSH_REDIS_URL", "redis://env:6379/2")
	t.Setenv("PUSH_HEARTBEAT", "3s")
	t.Setenv("PUSH_NODE_NAME", "from-env")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	url := fs.String("redis-url", "", "")
	hb := fs.Duration("heartbeat", time.Second, "")
	name := fs.String("node-name", "", "")
	if err := fs.Parse([]string{"-node-name", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs); err != nil {
		t.Fatal(err)
	}
	if *url != "redis://env:6379/2" || *hb != 3*time.Second || *name != "from-flag" {
		t.Errorf("got url %q heartbeat %v name %q; a flag given on the command line must win", *url, *hb, *name)
	}
}

func TestBadEnvironmentValueIsAnError(t *testing.T) {
	t.Setenv("PUSH_HEARTBEAT", "soon")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Duration("heartbeat", time.Second, "")
	err := applyEnv(fs)
	if err == nil || !strings.Contains(err.Error(), "PUSH_HEARTBEAT") {
		t.Errorf("got %v, want an error naming PUSH_HEARTBEAT", err)
	}
}

func TestUsageNamesEnvironmentVariables(t *testing.T) {
	var out strings.Builder
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(&out)
	fs.String("redis-url", "", "Redis URL")
	usage(fs)
	if !strings.Contains(out.String(), "PUSH_REDIS_URL") {
		t.Errorf("usage does not name PUSH_REDIS_URL:\n%s", out.String())
	}
}
