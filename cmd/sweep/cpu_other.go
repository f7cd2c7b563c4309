//go:build !unix

package main

import "time"

// processCPU is unknown here: the sweep's own CPU is reported as zero.
func processCPU() time.Duration { return 0 }
