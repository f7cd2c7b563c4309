package limit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxKeys bounds the limiters Keyed keeps; past it, idle ones are dropped.
const maxKeys = 100_000

// Keyed keeps a token bucket (golang.org/x/time/rate) per key: an API key,
// a user, an address. Buckets that are full again are forgotten, so the
// map holds only keys that published lately. Safe for concurrent use.
type Keyed struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

// NewKeyed allows perSecond events per key with bursts of burst; perSecond
// <= 0 means no limit.
func NewKeyed(perSecond float64, burst int) *Keyed {
	return &Keyed{limit: rate.Limit(perSecond), burst: max(burst, 1), m: make(map[string]*rate.Limiter)}
}

// Allow reports whether key may have one more event now; when not, it
// returns how long until it may.
func (k *Keyed) Allow(key string) (bool, time.Duration) {
	if k.limit <= 0 {
		return true, 0
	}
	now := time.Now()
	k.mu.Lock()
	l := k.m[key]
	if l == nil {
		if len(k.m) >= maxKeys {
			k.sweep(now)
		}
		l = rate.NewLimiter(k.limit, k.burst)
		k.m[key] = l
	}
	k.mu.Unlock()
	return allow(l, now)
}

// sweep forgets the limiters whose bucket has filled again; k.mu is held.
func (k *Keyed) sweep(now time.Time) {
	for key, l := range k.m {
		if l.TokensAt(now) >= float64(k.burst) {
			delete(k.m, key)
		}
	}
}

// New returns a limiter of the same rate for one connection, or nil when
// there is no limit.
func (k *Keyed) New() *rate.Limiter {
	if k.limit <= 0 {
		return nil
	}
	return rate.NewLimiter(k.limit, k.burst)
}

// Allow is Keyed.Allow for one limiter; a nil limiter allows everything.
func Allow(l *rate.Limiter) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	return allow(l, time.Now())
}

func allow(l *rate.Limiter, now time.Time) (bool, time.Duration) {
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
