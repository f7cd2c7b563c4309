package backoff

import (
	"context"
	"testing"
	"time"
)

// Waits are spread over [0, ceiling), the ceiling doubles to Max, and a
// reset starts again from Min.
func TestBackoffFullJitter(t *testing.T) {
	b := New(10*time.Millisecond, 80*time.Millisecond)
	ceilings := []time.Duration{10, 20, 40, 80, 80, 80}
	for i, c := range ceilings {
		c *= time.Millisecond
		var lo, hi time.Duration = c, 0
		for range 200 { // the same attempt, drawn again
			b.ceil = c
			d := b.Next()
			if d < 0 || d >= c {
				t.Fatalf("attempt %d: %v outside [0, %v)", i, d, c)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > c/4 || hi < 3*c/4 {
			t.Errorf("attempt %d: 200 draws span only [%v, %v] of [0, %v)", i, lo, hi, c)
		}
	}
	b = New(10*time.Millisecond, 80*time.Millisecond)
	for range 10 {
		b.Next()
	}
	if b.ceil != 80*time.Millisecond {
		t.Errorf("ceiling %v after 10 attempts, want Max", b.ceil)
	}
	b.Reset()
	if b.ceil != 10*time.Millisecond {
		t.Errorf("ceiling %v after Reset, want Min", b.ceil)
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep of a cancelled context ran out")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep did not run out")
	}
}
