package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// peakSampleEvery is how often the RSS sampler looks, as a cross-check of
// VmHWM and a fallback where clear_refs cannot be written.
const peakSampleEvery = 10 * time.Millisecond

// resetPeakRSS makes VmHWM in /proc/<pid>/status start again from the
// current RSS ("5" to clear_refs, Linux 4.0 and later).
func resetPeakRSS(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("bench: failed to reset the peak RSS of process %d: %w", pid, err)
	}
	return nil
}

// processPeakRSS returns VmHWM, the peak resident set size, in bytes.
func processPeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: failed to read the peak RSS of process %d: %w", pid, err)
	}
	return parseStatusKB(string(b), "VmHWM")
}

// parseStatusKB reads a "<field>:   1234 kB" line of /proc/<pid>/status
// as bytes.
func parseStatusKB(status, field string) (int64, error) {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, errProcFormat
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, errProcFormat
		}
		return kb << 10, nil
	}
	return 0, errProcFormat
}

// rssSampler keeps the largest VmRSS seen while it runs: a short peak can
// fall between two samples, which VmHWM does not miss.
type rssSampler struct {
	pid    int
	cancel context.CancelFunc
	wg     sync.WaitGroup
	max    int64
}

func startRSSSampler(ctx context.Context, pid int) *rssSampler {
	s := &rssSampler{pid: pid}
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Go(func() {
		tick := time.NewTicker(peakSampleEvery)
		defer tick.Stop()
		for {
			if rss, err := processRSS(pid); err == nil {
				s.max = max(s.max, rss)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return s
}

// stop ends the sampling and returns the largest RSS seen.
func (s *rssSampler) stop() int64 {
	s.cancel()
	s.wg.Wait()
	return s.max
}
