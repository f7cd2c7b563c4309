package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	// A command name with spaces and parentheses must not shift the fields.
	stat := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 123 456 789"
	got, err := parseStatCPU(stat)
	if err != nil || got != 325*clockTick {
		t.Fatalf("got %v, %v; want %v", got, err, 325*clockTick)
	}
	if _, err := parseStatCPU("4242 (x) S 1 2"); err == nil {
		t.Fatal("short stat accepted")
	}
}

func TestParseStatusRSS(t *testing.T) {
	t.Parallel()
	status := "Name:\tnode\nVmPeak:\t  999 kB\nVmRSS:\t   20480 kB\nThreads:\t8\n"
	got, err := parseStatusRSS(status)
	if err != nil || got != 20480<<10 {
		t.Fatalf("got %d, %v", got, err)
	}
	if _, err := parseStatusRSS("Name:\tkthread\n"); err == nil {
		t.Fatal("status without VmRSS accepted")
	}
}

func TestReadsOwnProcess(t *testing.T) {
	t.Parallel()
	rss, err := processRSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("RSS %d, %v", rss, err)
	}
	m, err := startCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if used, err := m.used(); err != nil || used < 0 || used > time.Hour {
		t.Fatalf("CPU used %v, %v", used, err)
	}
}
