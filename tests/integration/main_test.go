//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// cluster is the compose project every test shares.
var cluster *stack

func TestMain(m *testing.M) {
	if err := exec.Command("docker", "info").Run(); err != nil {
		fmt.Println("integration: no Docker engine; skipping")
		os.Exit(0)
	}
	// The Ryuk reaper image cannot be pulled here; the suite cleans up itself.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	s, err := startStack(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		os.Exit(1)
	}
	cluster = s
	// An interrupted run still removes its project.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		cluster.down()
		os.Exit(1)
	}()
	code := m.Run()
	cluster.down()
	os.Exit(code)
}
