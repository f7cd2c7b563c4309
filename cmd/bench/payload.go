package main

import (
	"bytes"
	"errors"
	"math"
	"strconv"
)

// payloadMagic starts every message the tool publishes.
const payloadMagic = "pcb:"

// errNotPayload is a message the tool did not publish in this run's format.
var errNotPayload = errors.New("bench: not a bench payload")

// stamp is what a payload carries: the run it belongs to, its sequence
// number on its channel (from 1), and when it was sent (Unix nanoseconds).
type stamp struct {
	Run  uint32
	Seq  uint64
	Sent int64
}

// appendPayload encodes st as "pcb:<run hex>:<seq>:<sent>:" padded with 'x'
// to size bytes; a size too small for the header gives just the header.
func appendPayload(dst []byte, st stamp, size int) []byte {
	start := len(dst)
	dst = append(dst, payloadMagic...)
	dst = strconv.AppendUint(dst, uint64(st.Run), 16)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, st.Seq, 10)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, st.Sent, 10)
	dst = append(dst, ':')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return dst
}

// parsePayload decodes a payload made by appendPayload where the stream
// holds it, without a copy: at 64 KiB a payload read by thousands of
// clients at once, copied for each, made the tool's readers its own
// bottleneck.
func parsePayload(s []byte) (stamp, error) {
	rest, ok := bytes.CutPrefix(s, []byte(payloadMagic))
	run, rest, ok1 := cutUint(rest, 16, math.MaxUint32)
	seq, rest, ok2 := cutUint(rest, 10, math.MaxUint64)
	neg := len(rest) > 0 && rest[0] == '-'
	if neg {
		rest = rest[1:]
	}
	sent, rest, ok3 := cutUint(rest, 10, math.MaxInt64+1)
	if !ok || !ok1 || !ok2 || !ok3 || (!neg && sent > math.MaxInt64) || bytes.Count(rest, []byte{'x'}) != len(rest) {
		return stamp{}, errNotPayload
	}
	st := stamp{Run: uint32(run), Seq: seq, Sent: int64(sent)}
	if neg {
		st.Sent = -int64(sent-1) - 1 // -(MaxInt64+1) does not fit before the negation
	}
	return st, nil
}

// cutUint reads the digits of s in base (10, or 16 in lower case) up to a
// ':', which it consumes, and returns their value, at most max, and the
// rest of s.
func cutUint(s []byte, base, max uint64) (uint64, []byte, bool) {
	var v uint64
	for i, c := range s {
		var d uint64
		switch {
		case c == ':':
			return v, s[i+1:], i > 0
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		default:
			return 0, s, false
		}
		if v > (max-d)/base {
			return 0, s, false
		}
		v = v*base + d
	}
	return 0, s, false
}
