package main

import (
	"slices"
	"testing"
)

func TestParseBursts(t *testing.T) {
	t.Parallel()
	got, err := parseBursts(" 1000x1024, 100x65536,")
	want := []BurstShape{{1000, 1024}, {100, 65536}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	if got[0].String() != "1000x1024" {
		t.Fatalf("String %q", got[0].String())
	}
	for _, bad := range []string{"", ",", "1000", "x1024", "0x1024", "10x10", "-1x1024", "10x1k"} {
		if _, err := parseBursts(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
