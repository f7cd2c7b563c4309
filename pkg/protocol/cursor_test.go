package protocol

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		channels []string
		pos      []ID
	}{
		{"one channel", []string{"news"}, []ID{{Ms: 1526919030474, Seq: 55}}},
		{"one channel at zero", []string{"news"}, []ID{{}}},
		{"two channels", []string{"a", "b"}, []ID{{Ms: 1, Seq: 2}, {}}},
		{"three channels", []string{"a", "b", "新闻"}, []ID{{Ms: 3}, {Ms: 2, Seq: 9}, {Ms: math.MaxUint64, Seq: math.MaxUint64}}},
	}
	for _, tt := range tests {
		hash := ChannelSetHash(tt.channels)
		s := EncodeCursor(hash, tt.pos)
		got, err := DecodeCursor(s, tt.channels)
		if err != nil {
			t.Errorf("%s: DecodeCursor(%q) error: %v", tt.name, s, err)
			continue
		}
		if !slices.Equal(got, tt.pos) {
			t.Errorf("%s: DecodeCursor(%q) = %v, want %v", tt.name, s, got, tt.pos)
		}
	}
}

func TestCursorFormat(t *testing.T) {
	t.Parallel()
	id := ID{Ms: 7, Seq: 1}
	if got := EncodeCursor("ignored", []ID{id}); got != "7-1" {
		t.Errorf("one-channel cursor = %q, want the plain entry ID %q", got, "7-1")
	}
	hash := ChannelSetHash([]string{"a", "b"})
	want := hash + ":7-1,0-0"
	if got := EncodeCursor(hash, []ID{id, {}}); got != want {
		t.Errorf("two-channel cursor = %q, want %q", got, want)
	}
	if len(hash) != 8 || strings.Trim(hash, "0123456789abcdef") != "" {
		t.Errorf("ChannelSetHash = %q, want 8 lowercase hex digits", hash)
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
		h := ChannelSetHash(set)
		if other, dup := seen[h]; dup {
			t.Errorf("ChannelSetHash(%q) = ChannelSetHash(%q) = %s", set, other, h)
		}
		seen[h] = set
		if again := ChannelSetHash(slices.Clone(set)); again != h {
			t.Errorf("ChannelSetHash(%q) not deterministic: %s then %s", set, h, again)
		}
	}
}

func TestDecodeCursorErrors(t *testing.T) {
	t.Parallel()
	one := []string{"news"}
	two := []string{"a", "b"}
	three := []string{"a", "b", "c"}
	h2 := ChannelSetHash(two)
	tests := []struct {
		name     string
		cursor   string
		channels []string
		want     error
	}{
		{"one: garbage", "garbage", one, ErrCursorMalformed},
		{"one: empty", "", one, ErrCursorMalformed},
		{"one: bad id", "1-x", one, ErrCursorMalformed},
		{"one: multi-channel cursor", h2 + ":1-0,2-0", one, ErrCursorMalformed},
		{"one: too long", strings.Repeat("1", MaxCursorLen+1), one, ErrCursorMalformed},
		{"two: garbage", "garbage", two, ErrCursorMalformed},
		{"two: plain entry ID, no hash", "1-0", two, ErrCursorMalformed},
		{"two: empty", "", two, ErrCursorMalformed},
		{"two: bad id", h2 + ":1-0,x", two, ErrCursorMalformed},
		{"two: empty id", h2 + ":1-0,", two, ErrCursorMalformed},
		{"two: signed id", h2 + ":+1-0,2-0", two, ErrCursorMalformed},
		{"two: space", h2 + ": 1-0,2-0", two, ErrCursorMalformed},
		{"two: too long", h2 + ":" + strings.Repeat("1-0,", MaxCursorLen/4), two, ErrCursorMalformed},
		{"two: other channel set", ChannelSetHash([]string{"a", "c"}) + ":1-0,2-0", two, ErrCursorMismatch},
		{"two: empty hash", ":1-0,2-0", two, ErrCursorMismatch},
		{"two: uppercase hash", strings.ToUpper(h2) + ":1-0,2-0", two, ErrCursorMismatch},
		{"two: too few ids", h2 + ":1-0", two, ErrCursorMismatch},
		{"two: too many ids", h2 + ":1-0,2-0,3-0", two, ErrCursorMismatch},
		{"three: cursor of two", h2 + ":1-0,2-0", three, ErrCursorMismatch},
		{"three: right hash, wrong count", ChannelSetHash(three) + ":1-0,2-0", three, ErrCursorMismatch},
	}
	for _, tt := range tests {
		pos, err := DecodeCursor(tt.cursor, tt.channels)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: DecodeCursor(%.40q, %q) = %v, %v; want %v", tt.name, tt.cursor, tt.channels, pos, err, tt.want)
		}
		if pos != nil {
			t.Errorf("%s: positions %v returned with an error", tt.name, pos)
		}
	}
}

func TestDecodeCursorAtLengthLimit(t *testing.T) {
	t.Parallel()
	two := []string{"a", "b"}
	h := ChannelSetHash(two)
	s := h + ":1-0," + strings.Repeat("0", MaxCursorLen-len(h)-5)
	if len(s) != MaxCursorLen {
		t.Fatalf("test cursor is %d bytes, want %d", len(s), MaxCursorLen)
	}
	// At the limit the length check passes; the ID is then too long.
	if _, err := DecodeCursor(s, two); !errors.Is(err, ErrCursorMalformed) || strings.Contains(err.Error(), "longer than") {
		t.Errorf("DecodeCursor(%d bytes) = %v, want malformed ID, not the length error", len(s), err)
	}
}

func FuzzDecodeCursor(f *testing.F) {
	sets := [][]string{{"news"}, {"a", "b"}, {"a", "b", "c"}}
	for _, set := range sets {
		h := ChannelSetHash(set)
		f.Add("1-0", uint8(len(set)-1))
		f.Add(h+":1-2,3-4", uint8(len(set)-1))
		f.Add(h+":0-0,1-1,18446744073709551615-18446744073709551615", uint8(len(set)-1))
		f.Add(h+":", uint8(len(set)-1))
	}
	f.Add("garbage", uint8(0))
	f.Add("01-00", uint8(0))
	f.Fuzz(func(t *testing.T, s string, which uint8) {
		channels := sets[int(which)%len(sets)]
		hash := ChannelSetHash(channels)
		pos, err := DecodeCursor(s, channels)
		if err != nil {
			if pos != nil {
				t.Fatalf("DecodeCursor(%q) returned positions %v with error %v", s, pos, err)
			}
			if !errors.Is(err, ErrCursorMalformed) && !errors.Is(err, ErrCursorMismatch) {
				t.Fatalf("DecodeCursor(%q) error %v is neither malformed nor mismatch", s, err)
			}
			return
		}
		if len(pos) != len(channels) {
			t.Fatalf("DecodeCursor(%q) = %d positions for %d channels", s, len(pos), len(channels))
		}
		again := EncodeCursor(hash, pos)
		back, err := DecodeCursor(again, channels)
		if err != nil || !slices.Equal(back, pos) {
			t.Fatalf("DecodeCursor(%q) = %v; re-encoded %q decodes to %v, %v", s, pos, again, back, err)
		}
		if EncodeCursor(hash, back) != again {
			t.Fatalf("encoding not stable for %q", again)
		}
	})
}

func TestCompareCursors(t *testing.T) {
	t.Parallel()
	id := func(ms uint64) ID { return ID{Ms: ms} }
	for _, tc := range []struct {
		a, b []ID
		cmp  int
		ok   bool
	}{
		{[]ID{id(1), id(2)}, []ID{id(1), id(2)}, 0, true},
		{[]ID{id(1), id(2)}, []ID{id(1), id(3)}, -1, true},
		{[]ID{id(2), id(3)}, []ID{id(1), id(3)}, 1, true},
		{[]ID{id(2), id(1)}, []ID{id(1), id(3)}, 0, false},
		{[]ID{id(1)}, []ID{id(1), id(3)}, 0, false},
	} {
		cmp, ok := CompareCursors(tc.a, tc.b)
		if cmp != tc.cmp || ok != tc.ok {
			t.Errorf("CompareCursors(%v, %v) = %d, %v; want %d, %v", tc.a, tc.b, cmp, ok, tc.cmp, tc.ok)
		}
	}
}
