// Package ratelog bounds how often an event that can repeat thousands of
// times a second is logged: a node refusing a connection storm must not
// spend its disk and CPU writing one line per refusal.
package ratelog

import (
	"sync"
	"time"
)

// Limiter lets an event be logged at most once per interval, and counts the
// occurrences in between so the next line can report them. The zero value
// is not usable; create one with New. It is safe for concurrent use.
type Limiter struct {
	every time.Duration

	mu    sync.Mutex
	last  time.Time
	count int
}

// New returns a limiter that allows one line per every.
func New(every time.Duration) *Limiter { return &Limiter{every: every} }

// Allow records one occurrence. It reports whether a line may be logged now
// and, if so, how many occurrences it stands for (this one included).
func (l *Limiter) Allow() (n int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count++
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		return 0, false
	}
	n, l.count, l.last = l.count, 0, now
	return n, true
}
