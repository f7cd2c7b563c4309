package protocol

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformedID is returned when a string is not a Redis stream entry ID.
var ErrMalformedID = errors.New("protocol: malformed entry ID")

// ID is a Redis stream entry ID: milliseconds and a sequence number. The zero
// ID ("0-0") sorts before every entry and means "from the beginning".
type ID struct {
	Ms  uint64
	Seq uint64
}

// ParseID parses "<ms>-<seq>" (or "<ms>", as Redis accepts) strictly: digits
// only, no signs or spaces. Leading zeros are accepted and not kept.
func ParseID(s string) (ID, error) {
	ms, seq, hasSeq := strings.Cut(s, "-")
	m, err := parseUint(ms)
	if err != nil {
		return ID{}, fmt.Errorf("%w: %q", ErrMalformedID, s)
	}
	id := ID{Ms: m}
	if hasSeq {
		if id.Seq, err = parseUint(seq); err != nil {
			return ID{}, fmt.Errorf("%w: %q", ErrMalformedID, s)
		}
	}
	return id, nil
}

func parseUint(s string) (uint64, error) {
	if s == "" || len(s) > 20 || s[0] < '0' || s[0] > '9' {
		return 0, ErrMalformedID
	}
	return strconv.ParseUint(s, 10, 64)
}

// String formats the ID as Redis does.
func (id ID) String() string {
	return string(id.AppendTo(nil))
}

// AppendTo appends the ID's text form to b.
func (id ID) AppendTo(b []byte) []byte {
	b = strconv.AppendUint(b, id.Ms, 10)
	b = append(b, '-')
	return strconv.AppendUint(b, id.Seq, 10)
}

// IsZero reports whether id is "0-0".
func (id ID) IsZero() bool { return id == ID{} }

// Compare returns -1, 0 or +1 as id sorts before, with or after o.
func (id ID) Compare(o ID) int {
	switch {
	case id.Ms < o.Ms:
		return -1
	case id.Ms > o.Ms:
		return 1
	case id.Seq < o.Seq:
		return -1
	case id.Seq > o.Seq:
		return 1
	}
	return 0
}

// Less reports whether id sorts before o.
func (id ID) Less(o ID) bool { return id.Compare(o) < 0 }
