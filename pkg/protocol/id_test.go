package protocol

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want ID
	}{
		{"0-0", ID{}},
		{"1-2", ID{Ms: 1, Seq: 2}},
		{"123", ID{Ms: 123}},
		{"1526919030474-55", ID{Ms: 1526919030474, Seq: 55}},
		{"18446744073709551615-0", ID{Ms: math.MaxUint64}},
		{"0-18446744073709551615", ID{Seq: math.MaxUint64}},
		{"18446744073709551615-18446744073709551615", ID{Ms: math.MaxUint64, Seq: math.MaxUint64}},
		{"18446744073709551615", ID{Ms: math.MaxUint64}},
	}
	for _, tt := range tests {
		got, err := ParseID(tt.in)
		if err != nil {
			t.Errorf("ParseID(%q) error: %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseID(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseIDRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"",
		"-",
		"1-",
		"-1",
		"+1-0",
		"1-+0",
		" 1-0",
		"1-0 ",
		"1 -0",
		"1-x",
		"x-1",
		"01x",
		"1-2-3",
		"1--2",
		"0x10-0",
		"1e3-0",
		"１-0", // fullwidth digit
		"18446744073709551616-0",
		"0-18446744073709551616",
		"99999999999999999999-0",
		strings.Repeat("0", 21) + "-0",
		strings.Repeat("1", 1000),
		"*",
		"$",
		"1-0\x00",
	} {
		id, err := ParseID(in)
		if err == nil {
			t.Errorf("ParseID(%q) = %+v, want error", in, id)
			continue
		}
		if !errors.Is(err, ErrMalformedID) {
			t.Errorf("ParseID(%q) error %v does not wrap ErrMalformedID", in, err)
		}
	}
}

func TestIDStringRoundTrip(t *testing.T) {
	t.Parallel()
	for _, id := range []ID{
		{},
		{Ms: 1},
		{Seq: 1},
		{Ms: 1526919030474, Seq: 55},
		{Ms: math.MaxUint64, Seq: math.MaxUint64},
	} {
		s := id.String()
		if got := string(id.AppendTo([]byte("x:"))); got != "x:"+s {
			t.Errorf("%+v.AppendTo(\"x:\") = %q, want %q", id, got, "x:"+s)
		}
		back, err := ParseID(s)
		if err != nil || back != id {
			t.Errorf("ParseID(%q) = %+v, %v; want %+v", s, back, err, id)
		}
	}
	if got := (ID{Ms: 5}).String(); got != "5-0" {
		t.Errorf("ID{Ms: 5}.String() = %q, want %q", got, "5-0")
	}
}

func TestIDCompare(t *testing.T) {
	t.Parallel()
	// Sorted ascending; every pair is compared both ways.
	ordered := []ID{
		{},
		{Seq: 1},
		{Seq: math.MaxUint64},
		{Ms: 1},
		{Ms: 1, Seq: 1},
		{Ms: 2},
		{Ms: math.MaxUint64},
		{Ms: math.MaxUint64, Seq: math.MaxUint64},
	}
	for i, a := range ordered {
		for j, b := range ordered {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", a, b, got, want)
			}
			if got := a.Less(b); got != (i < j) {
				t.Errorf("%v.Less(%v) = %v, want %v", a, b, got, i < j)
			}
		}
	}
	if !(ID{}).IsZero() || (ID{Seq: 1}).IsZero() {
		t.Error("IsZero is wrong")
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"0-0", "1-2", "123", "01-02", "-", "1-2-3", "18446744073709551615-18446744073709551615", "18446744073709551616-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedID) {
				t.Fatalf("ParseID(%q) error %v does not wrap ErrMalformedID", s, err)
			}
			return
		}
		canon := id.String()
		back, err := ParseID(canon)
		if err != nil || back != id {
			t.Fatalf("ParseID(%q) = %+v; ParseID(%q) = %+v, %v", s, id, canon, back, err)
		}
		if again := back.String(); again != canon {
			t.Fatalf("String not stable: %q then %q", canon, again)
		}
		// Only digits and one '-' parse; without leading zeros and with a
		// sequence, the input is already canonical.
		if strings.Trim(s, "0123456789-") != "" || strings.Count(s, "-") > 1 {
			t.Fatalf("ParseID(%q) accepted characters other than digits and one '-'", s)
		}
		if ms, seq, ok := strings.Cut(s, "-"); ok && !leadingZero(ms) && !leadingZero(seq) && canon != s {
			t.Fatalf("canonical input %q formats as %q", s, canon)
		}
	})
}

func leadingZero(s string) bool { return len(s) > 1 && s[0] == '0' }
