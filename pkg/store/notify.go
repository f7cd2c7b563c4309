package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// configurer is what checking a server's keyspace notifications needs.
type configurer interface {
	ConfigGet(ctx context.Context, parameter string) *redis.MapStringStringCmd
	ConfigSet(ctx context.Context, parameter, value string) *redis.StatusCmd
}

// notifySetting is what a shard's notify-keyspace-events was found to be.
type notifySetting struct {
	flags  string
	read   bool  // flags were read
	ok     bool  // they include K and t (or A): stream commands notify
	setErr error // CONFIG SET was refused
	getErr error // CONFIG GET was refused or failed
	// unreachable: getErr is no answer at all, not a refusal: the server
	// cannot be reached, and its setting is unknown.
	unreachable bool
	// polled: the store is known to have no notifications (the embedded
	// development store) and is polled on purpose: nothing to fix.
	polled bool
}

// streamFlags returns flags with K and t added where missing ("A" covers t).
func streamFlags(flags string) string {
	want := flags
	if !strings.Contains(want, "K") {
		want += "K"
	}
	if !strings.Contains(want, "t") && !strings.Contains(want, "A") {
		want += "t"
	}
	return want
}

// enableNotifications turns on keyspace notifications for stream commands
// (flags K and t) on one server, keeping whatever flags are already set.
// Failure is not fatal: managed Redis may forbid CONFIG yet have them on,
// and the probe tells; without them the doorbell polls that shard.
func enableNotifications(ctx context.Context, c configurer) notifySetting {
	cur, err := c.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		var reply redis.Error
		return notifySetting{getErr: err, unreachable: !errors.As(err, &reply)}
	}
	flags, found := cur["notify-keyspace-events"]
	if !found {
		return notifySetting{getErr: fmt.Errorf("notify-keyspace-events is not a setting of this server")}
	}
	want := streamFlags(flags)
	if want == flags {
		return notifySetting{flags: flags, read: true, ok: true}
	}
	if err := c.ConfigSet(ctx, "notify-keyspace-events", want).Err(); err != nil {
		return notifySetting{flags: flags, read: true, setErr: err}
	}
	return notifySetting{flags: want, read: true, ok: true}
}

// fix says what an operator must change on shard for its notifications to
// work, or "" when nothing is known to be wrong.
func (n notifySetting) fix(shard string) string {
	switch {
	case n.polled:
		return ""
	case n.unreachable:
		return fmt.Sprintf("cannot reach %s: check its address, that it runs, and the network between (%v)", shard, n.getErr)
	case n.read && !n.ok:
		return fmt.Sprintf("on %s set notify-keyspace-events to %q (it is %q; CONFIG SET was refused: %v): in redis.conf or the provider's settings",
			shard, streamFlags(n.flags), n.flags, n.setErr)
	case n.getErr != nil:
		return fmt.Sprintf("on %s make sure notify-keyspace-events includes K and t, e.g. \"Kt\" (CONFIG GET failed: %v)", shard, n.getErr)
	}
	return ""
}
