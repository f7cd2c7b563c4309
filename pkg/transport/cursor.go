package transport

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/pushcluster/pushcluster/pkg/store"
)

// A cursor is the SSE event ID of a subscription: the last entry ID seen on
// each of its channels. For one channel it is exactly the stream entry ID.
// For several it is "<hash>:<id>,<id>,…", one ID per channel in sorted
// channel order, where hash identifies the channel set, so a cursor is never
// applied to channels it was not made for. No clocks are compared.

var (
	errCursorMalformed = errors.New("transport: malformed cursor")
	errCursorMismatch  = errors.New("transport: cursor is for other channels")
)

// maxCursorLen bounds the cursor a client may send.
const maxCursorLen = 64 * 1024

func channelSetHash(channels []string) string {
	h := fnv.New32a()
	for _, c := range channels {
		h.Write([]byte(c))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%08x", h.Sum32())
}

// encodeCursor encodes positions, one per channel in sorted order; hash is
// channelSetHash of the channels.
func encodeCursor(hash string, pos []store.ID) string {
	if len(pos) == 1 {
		return pos[0].String()
	}
	return string(appendCursor(make([]byte, 0, 9+len(pos)*28), hash, pos))
}

// appendCursor appends the cursor encodeCursor returns.
func appendCursor(b []byte, hash string, pos []store.ID) []byte {
	if len(pos) == 1 {
		return pos[0].AppendTo(b)
	}
	b = append(b, hash...)
	b = append(b, ':')
	for i, id := range pos {
		if i > 0 {
			b = append(b, ',')
		}
		b = id.AppendTo(b)
	}
	return b
}

// decodeCursor parses a cursor for channels (sorted, deduplicated).
func decodeCursor(s string, channels []string) ([]store.ID, error) {
	if len(s) > maxCursorLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", errCursorMalformed, maxCursorLen)
	}
	if len(channels) == 1 {
		id, err := store.ParseID(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errCursorMalformed, err)
		}
		return []store.ID{id}, nil
	}
	hash, list, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("%w: no channel-set hash", errCursorMalformed)
	}
	parts := strings.Split(list, ",")
	if hash != channelSetHash(channels) || len(parts) != len(channels) {
		return nil, errCursorMismatch
	}
	pos := make([]store.ID, len(parts))
	for i, p := range parts {
		id, err := store.ParseID(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errCursorMalformed, err)
		}
		pos[i] = id
	}
	return pos, nil
}
