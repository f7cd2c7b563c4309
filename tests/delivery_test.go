//go:build unix

package tests

import (
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Two nodes share one Redis; SSE and WebSocket clients on both receive
// every publish (raw XADD and HTTP API, on either node) once and in order.
func TestTwoNodesDeliverOnceInOrder(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("a"), c.start("b")

	sseA, sseB := openSSE(t, sseURL(a, "news"), ""), openSSE(t, sseURL(b, "news"), "")
	wsA, wsB := dialWS(t, a, "?channel=news"), dialWS(t, b, "?channel=news")
	sseA.waitWelcome()
	sseB.waitWelcome()
	wsA.waitType("subscribed", 1)
	wsB.waitType("subscribed", 1)

	const n = 200
	for i := range n {
		msg := fmt.Sprintf("m%d", i)
		switch i % 3 {
		case 0:
			c.xadd("news", "data", msg)
		case 1:
			publish(t, a, map[string]string{"channel": "news", "data": msg})
		case 2:
			publish(t, b, map[string]string{"channel": "news", "data": msg, "event": "myEve"})
		}
	}
	want := seqData("m", 0, n)
	equalStrings(t, "SSE on a", sseA.waitData(n), want)
	equalStrings(t, "SSE on b", sseB.waitData(n), want)
	equalStrings(t, "WebSocket on a", wsA.waitData(n), want)
	equalStrings(t, "WebSocket on b", wsB.waitData(n), want)
	if got := len(sseA.named("myEve")); got != n/3 {
		t.Errorf("SSE myEve events: got %d, want %d", got, n/3)
	}
}

// A channel with hundreds of subscribers is fanned out by several workers;
// each subscriber still gets every message once, in order, including
// bursts read in one batch.
func TestLargeChannelFanOut(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("a")
	const subs = 300
	streams := make([]*sseStream, subs)
	for i := range streams {
		streams[i] = openSSE(t, sseURL(a, "big"), "")
	}
	for _, s := range streams {
		s.waitWelcome()
	}
	pipe := c.rdb.Pipeline()
	var want []string
	for i := range 100 {
		msg := fmt.Sprintf("big/%d", i)
		pipe.XAdd(t.Context(), &redis.XAddArgs{Stream: c.prefix + "big", Values: []any{"data", msg}})
		want = append(want, msg)
	}
	if _, err := pipe.Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, s := range streams {
		equalStrings(t, fmt.Sprintf("subscriber %d", i), s.waitData(len(want)), want)
	}
}
