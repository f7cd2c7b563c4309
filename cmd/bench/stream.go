package main

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"
)

// eventKind sorts what a stream delivers into what the tool counts.
type eventKind int

const (
	evOther   eventKind = iota
	evReady             // subscribed: SSE push.welcome, WebSocket subscribed
	evMessage           // a published message
	evGap               // SSE push.gap, WebSocket gap: the server reports loss
	evError             // SSE push.error, WebSocket error frame
)

// event is one thing a subscription received. id is the resume position
// after it (the SSE event ID, the WebSocket message ID or position), empty
// when the event carries none.
type event struct {
	kind eventKind
	id   string
	data string // of events other than messages
	// payload is a message's data, the stream's own buffer until its next
	// call: a copy of every 64 KiB payload for each of thousands of
	// clients was the tool's bottleneck, not the server's.
	payload []byte
}

// stream is one open subscription to one channel, over SSE, WebSocket or
// long polling.
// Only one goroutine calls next; close may be called from any, any number
// of times, and makes a blocked next return.
type stream interface {
	// next blocks for the next event.
	next() (event, error)
	// setDeadline bounds the reads until then; the zero time clears it.
	setDeadline(t time.Time)
	close()
}

// Transports.
const (
	transportSSE  = "sse"
	transportWS   = "ws"
	transportPoll = "poll"
)

// target opens streams to one server, or round-robin to several as a load
// balancer would, from the tool's source addresses.
type target struct {
	src   *sources
	bases atomic.Pointer[[]*url.URL]
	next  atomic.Uint64
}

func newTarget(base *url.URL, src *sources) *target {
	t := &target{src: src}
	t.route(base)
	return t
}

// route sends the dials that start from now on round-robin over bases.
func (t *target) route(bases ...*url.URL) { t.bases.Store(&bases) }

// pick returns the server the next dial goes to.
func (t *target) pick() *url.URL {
	bases := *t.bases.Load()
	return bases[(t.next.Add(1)-1)%uint64(len(bases))]
}

// dial opens a stream for client i subscribed to channels (its own first),
// resuming after since when it is not empty. The stream closes when ctx
// ends; deadline bounds the handshake and every read until the stream's
// setDeadline clears it.
func (t *target) dial(ctx context.Context, transport string, i int, channels []string, since string, deadline time.Time) (stream, error) {
	switch transport {
	case transportSSE:
		return t.dialSSE(ctx, i, channels, since, deadline)
	case transportWS:
		return t.dialWS(ctx, i, channels, since, deadline)
	case transportPoll:
		return t.dialPoll(ctx, i, channels, since, deadline)
	}
	return nil, fmt.Errorf("bench: unknown transport %q", transport)
}
