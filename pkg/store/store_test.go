package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pushcluster/pushcluster/internal/testredis"
)

// A Redis that answers nothing (paused, or behind a network that drops
// packets) makes Ping return when its context ends, not after the client's
// own read timeout: readiness probes have a deadline of their own.
func TestPingReturnsWithItsContext(t *testing.T) {
	t.Parallel()
	srv := testredis.Own(t)
	s := newTestStore(t, Config{Client: srv.Client(t)})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer srv.Resume()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Ping(ctx)
	// go-redis alone waits out its read timeout (3 s), and more.
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took >= srv.Client(t).Options().ReadTimeout {
		t.Errorf("Ping of a paused Redis: %v after %v, want the context's deadline, within the client's read timeout", err, took)
	}
}
