//go:build unix

package tests

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/pkg/node"
)

// With no Redis configured the node runs on its embedded development store,
// which has no keyspace notifications: it polls, and a plain XADD to the
// store's port still reaches subscribers.
func TestEmbeddedStoreDefault(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	n, err := node.New(node.Config{Listener: ln, Name: "dev", Logger: slogTo(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		<-done
	})
	tn := &testNode{Node: n, base: "http://" + ln.Addr().String()}
	s := openSSE(t, sseURL(tn, "demo"), "")
	w := dialWS(t, tn, "?channel=demo")
	s.waitWelcome()
	w.waitType("subscribed", 1)

	rdb := redis.NewClient(&redis.Options{Addr: n.DevStoreAddr()})
	defer rdb.Close()
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "push:demo", Values: []any{"event", "myEve", "data", "hello"}}).Err(); err != nil {
		t.Fatal(err)
	}
	equalStrings(t, "SSE", s.waitData(1), []string{"hello"})
	equalStrings(t, "WebSocket", w.waitData(1), []string{"hello"})
	// The demo page's redis-cli line reaches this store as printed.
	resp, err := http.Get(tn.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(n.DevStoreAddr())
	if page := string(readAll(t, resp)); !strings.Contains(page, `data-store-cli="-p `+port+`"`) {
		t.Errorf("the demo page does not give redis-cli the embedded store's port %s", port)
	}
	// The node started this store and knows it polls it: nothing to fix,
	// nothing to warn about.
	var ready struct {
		Delivery string
		Shards   []struct{ Delivery, Fix string }
	}
	getJSON(t, tn.base+"/readyz", &ready)
	if ready.Delivery != "poll" || len(ready.Shards) != 1 || ready.Shards[0].Fix != "" {
		t.Errorf("readiness on the embedded store: %+v, want poll and no fix", ready)
	}
	if l := logs.String(); strings.Contains(l, "notify-keyspace-events") || !strings.Contains(l, `level=INFO msg="the store has no keyspace notifications: polling it"`) {
		t.Errorf("the logs do not say, at INFO, that the store is polled:\n%s", l)
	}
}

// A Redis that cannot be reached is what readiness says to fix, not its
// notification setting.
func TestUnreachableRedisIsWhatReadinessSays(t *testing.T) {
	t.Parallel()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.Addr().String()
	dead.Close()
	c := &cluster{t: t, redisURL: "redis://" + addr + "/0", prefix: "unreachable:"}
	n := c.start("a")
	var ready struct {
		Ready  bool
		Shards []struct{ Delivery, Fix string }
	}
	checkFor(t, defaultWait, func() error {
		getJSON(t, n.base+"/readyz", &ready)
		if len(ready.Shards) != 1 || ready.Shards[0].Fix == "" {
			return fmt.Errorf("readiness %+v", ready)
		}
		return nil
	})
	fix := ready.Shards[0].Fix
	if ready.Ready || !strings.Contains(fix, "cannot reach "+addr) || strings.Contains(fix, "notify-keyspace-events") {
		t.Errorf("readiness %+v, want not ready and a fix that says %s cannot be reached", ready, addr)
	}
}
