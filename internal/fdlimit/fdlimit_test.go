//go:build unix

package fdlimit

import (
	"syscall"
	"testing"
)

func TestRaiseReachesTheHardLimit(t *testing.T) {
	_, to, err := Raise()
	if err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur != lim.Max || to != lim.Max {
		t.Errorf("soft limit %d, reported %d, hard limit %d", lim.Cur, to, lim.Max)
	}
}
