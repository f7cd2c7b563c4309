package main

import "testing"

func TestParseStatusKB(t *testing.T) {
	t.Parallel()
	status := "Name:\tnode\nVmHWM:\t   30720 kB\nVmRSS:\t   20480 kB\n"
	if got, err := parseStatusKB(status, "VmHWM"); err != nil || got != 30720<<10 {
		t.Fatalf("VmHWM %d, %v", got, err)
	}
	if _, err := parseStatusKB(status, "VmSwap"); err == nil {
		t.Fatal("a missing field was read")
	}
	if _, err := parseStatusKB("VmHWM:\t12 MB\n", "VmHWM"); err == nil {
		t.Fatal("a field in MB was read")
	}
}
