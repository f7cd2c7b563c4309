package protocol

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
)

// A cursor is the SSE event ID of a subscription: the last entry ID seen on
// each of its channels. For one channel it is exactly the stream entry ID.
// For several it is "<hash>:<id>,<id>,…", one ID per channel in sorted
// channel order, where hash identifies the channel set, so a cursor is never
// applied to channels it was not made for. No clocks are compared.

var (
	// ErrCursorMalformed: a cursor that does not parse.
	ErrCursorMalformed = errors.New("protocol: malformed cursor")
	// ErrCursorMismatch: a cursor made for another set of channels.
	ErrCursorMismatch = errors.New("protocol: cursor is for other channels")
)

// MaxCursorLen bounds the cursor a client may send.
const MaxCursorLen = 64 * 1024

// ChannelSetHash names a set of channels (sorted, deduplicated) in a
// cursor: 8 hex digits of FNV-1a over the names.
func ChannelSetHash(channels []string) string {
	h := fnv.New32a()
	for _, c := range channels {
		h.Write([]byte(c))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%08x", h.Sum32())
}

// EncodeCursor encodes positions, one per channel in sorted order; hash is
// ChannelSetHash of the channels.
func EncodeCursor(hash string, pos []ID) string {
	if len(pos) == 1 {
		return pos[0].String()
	}
	return string(AppendCursor(make([]byte, 0, 9+len(pos)*28), hash, pos))
}

// AppendCursor appends the cursor EncodeCursor returns.
func AppendCursor(b []byte, hash string, pos []ID) []byte {
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

// DecodeCursor parses a cursor for channels (sorted, deduplicated).
func DecodeCursor(s string, channels []string) ([]ID, error) {
	if len(s) > MaxCursorLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrCursorMalformed, MaxCursorLen)
	}
	if len(channels) == 1 {
		id, err := ParseID(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCursorMalformed, err)
		}
		return []ID{id}, nil
	}
	hash, list, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("%w: no channel-set hash", ErrCursorMalformed)
	}
	parts := strings.Split(list, ",")
	if hash != ChannelSetHash(channels) || len(parts) != len(channels) {
		return nil, ErrCursorMismatch
	}
	pos := make([]ID, len(parts))
	for i, p := range parts {
		id, err := ParseID(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCursorMalformed, err)
		}
		pos[i] = id
	}
	return pos, nil
}

// CompareCursors orders two positions of one channel set, as DecodeCursor
// returns them: -1 when a is behind b on some channel and ahead on none, +1
// the reverse, 0 when they are equal. ok is false when they cannot be
// ordered: each is ahead on some channel, or they are of different sets.
func CompareCursors(a, b []ID) (cmp int, ok bool) {
	if len(a) != len(b) {
		return 0, false
	}
	for i := range a {
		switch c := a[i].Compare(b[i]); {
		case c == 0:
		case cmp == 0:
			cmp = c
		case cmp != c:
			return 0, false
		}
	}
	return cmp, true
}
