package main

import (
	"flag"
	"net/http"
	"net/http/httptest"
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

func TestHealthcheckSubcommand(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	t.Setenv("PUSH_LISTEN", addr)
	if err := run([]string{"healthcheck"}); err != nil {
		t.Errorf("healthcheck of a healthy node at PUSH_LISTEN: %v", err)
	}
	if err := run([]string{"healthcheck", "-path", "/readyz"}); err == nil {
		t.Error("healthcheck of a 404 path succeeded")
	}
	t.Setenv("PUSH_LISTEN", "127.0.0.1:1")
	if err := run([]string{"healthcheck", "-listen", addr}); err != nil {
		t.Errorf("-listen must win over PUSH_LISTEN: %v", err)
	}
}
