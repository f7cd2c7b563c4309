package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which Linux fixes at 100 on every architecture Go supports.
const clockTick = 10 * time.Millisecond

// errProcFormat is a /proc file this tool cannot read.
var errProcFormat = errors.New("bench: unexpected /proc format")

// processCPU returns the user plus system CPU time the process has used,
// all threads, from /proc/<pid>/stat.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: failed to read CPU of process %d: %w", pid, err)
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a stat line.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errProcFormat
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, errProcFormat
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errProcFormat
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// processRSS returns the process's resident set size in bytes, from
// VmRSS in /proc/<pid>/status.
func processRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: failed to read RSS of process %d: %w", pid, err)
	}
	return parseStatusRSS(string(b))
}

// parseStatusRSS reads "VmRSS:   1234 kB".
func parseStatusRSS(status string) (int64, error) { return parseStatusKB(status, "VmRSS") }

// cpuMeter measures one process's CPU over an interval.
type cpuMeter struct {
	pid   int
	start time.Duration
}

func startCPU(pid int) (*cpuMeter, error) {
	c, err := processCPU(pid)
	return &cpuMeter{pid: pid, start: c}, err
}

// used returns the CPU time since startCPU.
func (m *cpuMeter) used() (time.Duration, error) {
	c, err := processCPU(m.pid)
	return c - m.start, err
}
