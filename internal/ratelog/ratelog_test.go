package ratelog

import "testing"

func TestLimiterCountsWhatItHolds(t *testing.T) {
	t.Parallel()
	l := New(1 << 62) // one line, then none for as long as the test runs
	if n, ok := l.Allow(); !ok || n != 1 {
		t.Fatalf("first: %d, %v; want 1, true", n, ok)
	}
	for range 1000 {
		if _, ok := l.Allow(); ok {
			t.Fatal("allowed a second line within the interval")
		}
	}
	l.every = 0
	if n, ok := l.Allow(); !ok || n != 1001 {
		t.Fatalf("after the interval: %d, %v; want 1001, true", n, ok)
	}
}
