package main

import (
	"errors"
	"strconv"
	"strings"
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

// parsePayload decodes a payload made by appendPayload.
func parsePayload(s string) (stamp, error) {
	rest, ok := strings.CutPrefix(s, payloadMagic)
	if !ok {
		return stamp{}, errNotPayload
	}
	var fields [3]string
	for i := range fields {
		var found bool
		fields[i], rest, found = strings.Cut(rest, ":")
		if !found {
			return stamp{}, errNotPayload
		}
	}
	run, err1 := strconv.ParseUint(fields[0], 16, 32)
	seq, err2 := strconv.ParseUint(fields[1], 10, 64)
	sent, err3 := strconv.ParseInt(fields[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || strings.Trim(rest, "x") != "" {
		return stamp{}, errNotPayload
	}
	return stamp{Run: uint32(run), Seq: seq, Sent: sent}, nil
}
