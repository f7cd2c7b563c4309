package main

import (
	"strings"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	st := stamp{Run: 0xdeadbeef, Seq: 12345, Sent: 1732590000123456789}
	for _, size := range []int{0, 10, 41, 100, 4096} {
		p := string(appendPayload(nil, st, size))
		if len(p) < size {
			t.Errorf("size %d: payload of %d bytes", size, len(p))
		}
		if size > 50 && len(p) != size {
			t.Errorf("size %d: payload of %d bytes", size, len(p))
		}
		got, err := parsePayload([]byte(p))
		if err != nil || got != st {
			t.Errorf("size %d: %+v, %v; want %+v", size, got, err, st)
		}
	}
}

func TestPayloadAppends(t *testing.T) {
	t.Parallel()
	b := appendPayload([]byte("keep"), stamp{Run: 1, Seq: 2, Sent: 3}, 20)
	if !strings.HasPrefix(string(b), "keep") || len(b) != 24 {
		t.Fatalf("got %q", b)
	}
}

func TestParsePayloadRejects(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "hello", "pcb:", "pcb:1:2", "pcb:zz:1:2:", "pcb:1:-1:2:", "pcb:1:2:3:xxy", "pcb:1:2:3x:"} {
		if _, err := parsePayload([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParsePayload(f *testing.F) {
	f.Add("pcb:1:2:3:xxx")
	f.Add("pcb:ffffffff:18446744073709551615:-1:")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parsePayload([]byte(s))
		if err != nil {
			return
		}
		again, err := parsePayload(appendPayload(nil, st, 0))
		if err != nil || again != st {
			t.Fatalf("%q decodes to %+v, which does not round-trip: %+v %v", s, st, again, err)
		}
	})
}

// The readers of a burst decode each payload where the stream holds it.
func BenchmarkParsePayload(b *testing.B) {
	p := appendPayload(nil, stamp{Run: 0xdeadbeef, Seq: 12345, Sent: 1732590000123456789}, 64<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := parsePayload(p); err != nil {
			b.Fatal(err)
		}
	}
}
