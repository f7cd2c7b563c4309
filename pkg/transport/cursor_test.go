package transport

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/pushcluster/pushcluster/pkg/store"
)

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		channels []string
		pos      []store.ID
	}{
		{"one channel", []string{"news"}, []store.ID{{Ms: 1526919030474, Seq: 55}}},
		{"one channel at zero", []string{"news"}, []store.ID{{}}},
		{"two channels", []string{"a", "b"}, []store.ID{{Ms: 1, Seq: 2}, {}}},
		{"three channels", []string{"a", "b", "新闻"}, []store.ID{{Ms: 3}, {Ms: 2, Seq: 9}, {Ms: math.MaxUint64, Seq: math.MaxUint64}}},
	}
	for _, tt := range tests {
		hash := channelSetHash(tt.channels)
		s := encodeCursor(hash, tt.pos)
		got, err := decodeCursor(s, tt.channels)
		if err != nil {
			t.Errorf("%s: decodeCursor(%q) error: %v", tt.name, s, err)
			continue
		}
		if !slices.Equal(got, tt.pos) {
			t.Errorf("%s: decodeCursor(%q) = %v, want %v", tt.name, s, got, tt.pos)
		}
	}
}

func TestCursorFormat(t *testing.T) {
	t.Parallel()
	id := store.ID{Ms: 7, Seq: 1}
	if got := encodeCursor("ignored", []store.ID{id}); got != "7-1" {
		t.Errorf("one-channel cursor = %q, want the plain entry ID %q", got, "7-1")
	}
	hash := channelSetHash([]string{"a", "b"})
	want := hash + ":7-1,0-0"
	if got := encodeCursor(hash, []store.ID{id, {}}); got != want {
		t.Errorf("two-channel cursor = %q, want %q", got, want)
	}
	if len(hash) != 8 || strings.Trim(hash, "0123456789abcdef") != "" {
		t.Errorf("channelSetHash = %q, want 8 lowercase hex digits", hash)
	}
}

func TestChannelSetHashDistinguishesSets(t *testing.T) {
	t.Parallel()
	sets := [][]string{
		{"a"},
		{"b"},
		{"a", "b"},
		{"b", "a"},
		{"ab"},
		{"a", "b", "c"},
		{"a", "bc"},
		{"ab", "c"},
		{"news", "sport"},
	}
	seen := map[string][]string{}
	for _, set := range sets {
		h := channelSetHash(set)
		if other, dup := seen[h]; dup {
			t.Errorf("channelSetHash(%q) = channelSetHash(%q) = %s", set, other, h)
		}
		seen[h] = set
		if again := channelSetHash(slices.Clone(set)); again != h {
			t.Errorf("channelSetHash(%q) not deterministic: %s then %s", set, h, again)
		}
	}
}

func TestDecodeCursorErrors(t *testing.T) {
	t.Parallel()
	one := []string{"news"}
	two := []string{"a", "b"}
	three := []string{"a", "b", "c"}
	h2 := channelSetHash(two)
	tests := []struct {
		name     string
		cursor   string
		channels []string
		want     error
	}{
		{"one: garbage", "garbage", one, errCursorMalformed},
		{"one: empty", "", one, errCursorMalformed},
		{"one: bad id", "1-x", one, errCursorMalformed},
		{"one: multi-channel cursor", h2 + ":1-0,2-0", one, errCursorMalformed},
		{"one: too long", strings.Repeat("1", maxCursorLen+1), one, errCursorMalformed},
		{"two: garbage", "garbage", two, errCursorMalformed},
		{"two: plain entry ID, no hash", "1-0", two, errCursorMalformed},
		{"two: empty", "", two, errCursorMalformed},
		{"two: bad id", h2 + ":1-0,x", two, errCursorMalformed},
		{"two: empty id", h2 + ":1-0,", two, errCursorMalformed},
		{"two: signed id", h2 + ":+1-0,2-0", two, errCursorMalformed},
		{"two: space", h2 + ": 1-0,2-0", two, errCursorMalformed},
		{"two: too long", h2 + ":" + strings.Repeat("1-0,", maxCursorLen/4), two, errCursorMalformed},
		{"two: other channel set", channelSetHash([]string{"a", "c"}) + ":1-0,2-0", two, errCursorMismatch},
		{"two: empty hash", ":1-0,2-0", two, errCursorMismatch},
		{"two: uppercase hash", strings.ToUpper(h2) + ":1-0,2-0", two, errCursorMismatch},
		{"two: too few ids", h2 + ":1-0", two, errCursorMismatch},
		{"two: too many ids", h2 + ":1-0,2-0,3-0", two, errCursorMismatch},
		{"three: cursor of two", h2 + ":1-0,2-0", three, errCursorMismatch},
		{"three: right hash, wrong count", channelSetHash(three) + ":1-0,2-0", three, errCursorMismatch},
	}
	for _, tt := range tests {
		pos, err := decodeCursor(tt.cursor, tt.channels)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: decodeCursor(%.40q, %q) = %v, %v; want %v", tt.name, tt.cursor, tt.channels, pos, err, tt.want)
		}
		if pos != nil {
			t.Errorf("%s: positions %v returned with an error", tt.name, pos)
		}
	}
}

func TestDecodeCursorAtLengthLimit(t *testing.T) {
	t.Parallel()
	two := []string{"a", "b"}
	h := channelSetHash(two)
	s := h + ":1-0," + strings.Repeat("0", maxCursorLen-len(h)-5)
	if len(s) != maxCursorLen {
		t.Fatalf("test cursor is %d bytes, want %d", len(s), maxCursorLen)
	}
	// At the limit the length check passes; the ID is then too long.
	if _, err := decodeCursor(s, two); !errors.Is(err, errCursorMalformed) || strings.Contains(err.Error(), "longer than") {
		t.Errorf("decodeCursor(%d bytes) = %v, want malformed ID, not the length error", len(s), err)
	}
}

func FuzzDecodeCursor(f *testing.F) {
	sets := [][]string{{"news"}, {"a", "b"}, {"a", "b", "c"}}
	for _, set := range sets {
		h := channelSetHash(set)
		f.Add("1-0", uint8(len(set)-1))
		f.Add(h+":1-2,3-4", uint8(len(set)-1))
		f.Add(h+":0-0,1-1,18446744073709551615-18446744073709551615", uint8(len(set)-1))
		f.Add(h+":", uint8(len(set)-1))
	}
	f.Add("garbage", uint8(0))
	f.Add("01-00", uint8(0))
	f.Fuzz(func(t *testing.T, s string, which uint8) {
		channels := sets[int(which)%len(sets)]
		hash := channelSetHash(channels)
		pos, err := decodeCursor(s, channels)
		if err != nil {
			if pos != nil {
				t.Fatalf("decodeCursor(%q) returned positions %v with error %v", s, pos, err)
			}
			if !errors.Is(err, errCursorMalformed) && !errors.Is(err, errCursorMismatch) {
				t.Fatalf("decodeCursor(%q) error %v is neither malformed nor mismatch", s, err)
			}
			return
		}
		if len(pos) != len(channels) {
			t.Fatalf("decodeCursor(%q) = %d positions for %d channels", s, len(pos), len(channels))
		}
		again := encodeCursor(hash, pos)
		back, err := decodeCursor(again, channels)
		if err != nil || !slices.Equal(back, pos) {
			t.Fatalf("decodeCursor(%q) = %v; re-encoded %q decodes to %v, %v", s, pos, again, back, err)
		}
		if encodeCursor(hash, back) != again {
			t.Fatalf("encoding not stable for %q", again)
		}
	})
}
