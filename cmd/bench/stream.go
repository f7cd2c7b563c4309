package main

import (
	"context"
	"fmt"
	"net/url"
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
	data string
}

// stream is one open subscription to one channel, over SSE or WebSocket.
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
	transportSSE = "sse"
	transportWS  = "ws"
)

// target opens streams to one server from the tool's source addresses.
type target struct {
	base *url.URL
	src  *sources
}

// dial opens a stream for client i on channel, resuming after since when
// it is not empty. The stream closes when ctx ends; deadline bounds the
// handshake and every read until the stream's setDeadline clears it.
func (t *target) dial(ctx context.Context, transport string, i int, channel, since string, deadline time.Time) (stream, error) {
	switch transport {
	case transportSSE:
		return t.dialSSE(ctx, i, channel, since, deadline)
	case transportWS:
		return t.dialWS(ctx, i, channel, since, deadline)
	}
	return nil, fmt.Errorf("bench: unknown transport %q", transport)
}
