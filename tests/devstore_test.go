package tests

import (
	"context"
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
	n, err := node.New(node.Config{Listener: ln, Name: "dev"})
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
	var ready struct{ Delivery string }
	getJSON(t, tn.base+"/readyz", &ready)
	if ready.Delivery != "poll" {
		t.Errorf("delivery on the embedded store: %q, want poll", ready.Delivery)
	}
}
