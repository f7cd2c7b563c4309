//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	sse "github.com/tmaxmax/go-sse"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// The clients are written against docs/PROTOCOL.md with libraries that are
// not the project's: github.com/gorilla/websocket for WebSocket, and the
// WHATWG event-stream parser of github.com/tmaxmax/go-sse for SSE. Each
// reconnects on its own, as the protocol says a client should, and records
// what arrived for the checks.

// reconnectDelay is how long a client waits before reconnecting: about an
// EventSource's retry, spread so that hundreds of clients do not all
// arrive in the same millisecond.
func reconnectDelay() time.Duration {
	return 500*time.Millisecond + rand.N(time.Second)
}

// delivery is one message as a client received it.
type delivery struct {
	seq int
	at  time.Time
}

// gapMark is a gap signal, placed between the deliveries it arrived between.
type gapMark struct {
	after  int // deliveries on the channel before the gap arrived
	reason string
}

// record is what one client received, per channel.
type record struct {
	mu         sync.Mutex
	name       string
	channels   []string
	got        map[string][]delivery
	gaps       map[string][]gapMark
	nodes      []string // the node of every welcome, in order
	connects   int      // successful connections, the first included
	refused    int      // answers other than 200 / 101: an EventSource gives up on them
	failed     int      // attempts that got no answer at all: any client tries again
	why        []string // the first few refusals and failures, for the log
	errors     []string // error frames and push.error events
	subscribed map[string]bool
}

func newRecord(name string, channels []string) *record {
	return &record{name: name, channels: channels, got: map[string][]delivery{}, gaps: map[string][]gapMark{}, subscribed: map[string]bool{}}
}

// message records data "<channel> <seq>"; it returns false for data that is
// not the publisher's.
func (r *record) message(data string) bool {
	ch, n, ok := strings.Cut(data, " ")
	seq, err := strconv.Atoi(n)
	if !ok || err != nil {
		r.error("undecodable message " + data)
		return false
	}
	r.mu.Lock()
	r.got[ch] = append(r.got[ch], delivery{seq: seq, at: time.Now()})
	r.mu.Unlock()
	return true
}

func (r *record) gap(channel, reason string) {
	r.mu.Lock()
	r.gaps[channel] = append(r.gaps[channel], gapMark{after: len(r.got[channel]), reason: reason})
	r.mu.Unlock()
}

func (r *record) welcome(node string) {
	r.mu.Lock()
	r.nodes = append(r.nodes, node)
	r.connects++
	r.mu.Unlock()
}

func (r *record) refusal(why string) {
	r.mu.Lock()
	r.refused++
	if len(r.why) < 3 {
		r.why = append(r.why, why)
	}
	r.mu.Unlock()
}

func (r *record) failure(why string) {
	r.mu.Lock()
	r.failed++
	if len(r.why) < 3 {
		r.why = append(r.why, why)
	}
	r.mu.Unlock()
}

func (r *record) error(msg string) {
	r.mu.Lock()
	if len(r.errors) < 20 {
		r.errors = append(r.errors, msg)
	}
	r.mu.Unlock()
}

func (r *record) setSubscribed(channel string) {
	r.mu.Lock()
	r.subscribed[channel] = true
	r.mu.Unlock()
}

// ready reports whether the client is connected and subscribed to every channel.
func (r *record) ready() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ch := range r.channels {
		if !r.subscribed[ch] {
			return false
		}
	}
	return true
}

// last returns the last sequence number the client received on channel.
func (r *record) last(channel string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got[channel]
	if len(got) == 0 {
		return 0
	}
	return got[len(got)-1].seq
}

// sseClient is an EventSource: one GET /sse stream at a time, resumed with
// Last-Event-ID after any end.
type sseClient struct {
	rec    *record
	url    string
	http   *http.Client
	lastID string
}

func newSSEClient(base string, hc *http.Client, rec *record) *sseClient {
	q := url.Values{"channel": rec.channels}
	return &sseClient{rec: rec, url: base + "/sse?" + q.Encode(), http: hc}
}

func (c *sseClient) run(ctx context.Context) {
	for ctx.Err() == nil {
		c.stream(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(reconnectDelay()):
		}
	}
}

// stream reads one connection's events until it ends.
func (c *sseClient) stream(ctx context.Context) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	req.Header.Set("Accept", "text/event-stream")
	if c.lastID != "" {
		req.Header.Set("Last-Event-ID", c.lastID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			c.rec.failure(err.Error())
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// A browser's EventSource would stop here for good.
		c.rec.refusal(resp.Status)
		return
	}
	for ev, err := range sse.Read(resp.Body, &sse.ReadConfig{MaxEventSize: 1 << 20}) {
		if err != nil {
			return
		}
		c.lastID = ev.LastEventID
		switch ev.Type {
		case protocol.EventWelcome:
			var w struct{ Node string }
			json.Unmarshal([]byte(ev.Data), &w)
			c.rec.welcome(w.Node)
			for _, ch := range c.rec.channels {
				c.rec.setSubscribed(ch)
			}
		case protocol.EventGap:
			var g struct {
				Channels []string
				Reason   string
			}
			json.Unmarshal([]byte(ev.Data), &g)
			for _, ch := range g.Channels {
				c.rec.gap(ch, g.Reason)
			}
		case protocol.EventError:
			c.rec.error("push.error " + ev.Data)
		case "", "message":
			c.rec.message(ev.Data)
		default:
			c.rec.error("unexpected event " + ev.Type)
		}
	}
}

// wsClient is a WebSocket client: it subscribes to each channel, and after
// a reconnect subscribes again with since = the last message ID it got on
// that channel (or the position its subscription started after).
type wsClient struct {
	rec    *record
	url    string
	dialer *websocket.Dialer

	mu    sync.Mutex // since is read by delayed resubscriptions
	since map[string]string
}

func (c *wsClient) position(ch string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.since[ch]
}

// advance sets the channel's resume position; first only when none is set.
func (c *wsClient) advance(ch, id string, first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !first || c.since[ch] == "" {
		c.since[ch] = id
	}
}

func newWSClient(base string, rec *record) *wsClient {
	return &wsClient{
		rec:    rec,
		url:    strings.Replace(base, "http://", "ws://", 1) + "/ws",
		dialer: &websocket.Dialer{HandshakeTimeout: 10 * time.Second},
		since:  map[string]string{},
	}
}

func (c *wsClient) run(ctx context.Context) {
	for ctx.Err() == nil {
		c.session(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(reconnectDelay()):
		}
	}
}

// session runs one connection until it closes.
func (c *wsClient) session(ctx context.Context) {
	conn, resp, err := c.dialer.DialContext(ctx, c.url, nil)
	if err != nil {
		switch {
		case ctx.Err() != nil:
		case resp != nil:
			c.rec.refusal(err.Error() + ": " + resp.Status)
		default:
			c.rec.failure(err.Error())
		}
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var wmu sync.Mutex
	subscribe := func(ch string) {
		ref, _ := json.Marshal(ch)
		f := protocol.ClientFrame{Type: protocol.TypeSubscribe, Channel: ch, Since: c.position(ch), Ref: ref}
		wmu.Lock()
		defer wmu.Unlock()
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		conn.WriteJSON(f)
	}
	for _, ch := range c.rec.channels {
		subscribe(ch)
	}
	for {
		var f protocol.ServerFrame
		if err := conn.ReadJSON(&f); err != nil {
			var syntax *json.SyntaxError
			if errors.As(err, &syntax) {
				c.rec.error("undecodable frame")
			}
			return
		}
		c.frame(ctx, f, subscribe)
	}
}

func (c *wsClient) frame(ctx context.Context, f protocol.ServerFrame, subscribe func(string)) {
	switch f.Type {
	case protocol.TypeWelcome:
		c.rec.welcome(f.Node)
	case protocol.TypeSubscribed:
		c.advance(f.Channel, f.Position, true)
		c.rec.setSubscribed(f.Channel)
	case protocol.TypeMessage:
		if f.Data != nil && c.rec.message(*f.Data) {
			c.advance(f.Channel, f.ID, false)
		}
	case protocol.TypeGap:
		c.rec.gap(f.Channel, f.Reason)
		if f.Resume != "" {
			c.advance(f.Channel, f.Resume, false)
		}
	case protocol.TypeError:
		var ch string
		if f.Code == protocol.CodeUnavailable && json.Unmarshal(f.Ref, &ch) == nil && ch != "" {
			// Redis is away: subscribe again in a while (PROTOCOL: retry).
			time.AfterFunc(reconnectDelay(), func() {
				if ctx.Err() == nil {
					subscribe(ch)
				}
			})
			return
		}
		c.rec.error("error " + f.Code + ": " + f.Message)
	case protocol.TypePong, protocol.TypeAck, protocol.TypeUnsubscribed:
	default:
		c.rec.error("unexpected frame " + f.Type)
	}
}
