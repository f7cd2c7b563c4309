// Package leakcheck finds the goroutines a test package leaves behind,
// patient with the ones that end on their own a little after the tests.
package leakcheck

import (
	"time"

	"go.uber.org/goleak"
)

// Find reports the goroutines running now that before did not ignore (a
// goleak.IgnoreCurrent taken when the tests began), retrying for a few
// seconds.
func Find(before goleak.Option) error {
	// go-redis keeps retrying a failed dial for up to a second after its
	// pool closes: tests that stop Redis leave one behind briefly.
	redisRedial := goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial")
	// memberlist's probe of a member waits for its ack or its timeout even
	// after Shutdown: on a loaded machine that outlives goleak's default
	// ~2 s of retries. Waiting longer still catches real leaks.
	err := goleak.Find(before, redisRedial)
	for try := 0; err != nil && try < 5; try++ {
		time.Sleep(time.Second)
		err = goleak.Find(before, redisRedial)
	}
	return err
}
