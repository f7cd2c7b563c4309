package main

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultBursts are the burst shapes issue 11 names: many small entries,
// and few large ones.
const DefaultBursts = "1000x1024,100x65536"

// BurstShape is one burst: Count entries of Bytes bytes of data each.
type BurstShape struct {
	Count int `json:"entries"`
	Bytes int `json:"entry_bytes"`
}

// String renders the shape as -bursts takes it.
func (b BurstShape) String() string { return fmt.Sprintf("%dx%d", b.Count, b.Bytes) }

// parseBursts reads "1000x1024,100x65536". Every entry must have room for
// the payload's stamp, which is how the clients check order.
func parseBursts(s string) ([]BurstShape, error) {
	var out []BurstShape
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		count, size, ok := strings.Cut(f, "x")
		c, err1 := strconv.Atoi(count)
		b, err2 := strconv.Atoi(size)
		if !ok || err1 != nil || err2 != nil || c <= 0 || b < minBurstBytes {
			return nil, fmt.Errorf("bench: bad -bursts %q: want COUNTxBYTES,… with COUNT > 0 and BYTES ≥ %d", s, minBurstBytes)
		}
		out = append(out, BurstShape{Count: c, Bytes: b})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: -bursts %q names no burst", s)
	}
	return out, nil
}

// minBurstBytes is room for the longest stamp appendPayload writes.
const minBurstBytes = 64
