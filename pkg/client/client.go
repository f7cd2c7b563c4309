// Package client is a Go client of pushcluster nodes: subscribe to
// channels over WebSocket, Server-Sent Events or long polling, and
// publish.
//
// A Subscription keeps the promises the node makes across any failure: it
// reconnects with full-jitter backoff, to the same URL (a load balancer)
// or the next of several nodes, and resumes every channel from the last
// position it delivered, on whatever node it reaches, so its messages
// arrive in order and exactly once, and what cannot be had again arrives
// as a *Gap. Everything ends with its context or Close, and leaves no
// goroutine behind.
//
// The frames and positions are pkg/protocol's, the node's own.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pushcluster/pushcluster/internal/backoff"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// Transports a Subscription may use.
const (
	TransportWebSocket = "ws"
	TransportSSE       = "sse"
	TransportPoll      = "poll"
)

// Defaults of Config.
const (
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 10 * time.Second
	DefaultStallTimeout = 45 * time.Second
)

// Config configures a Client. Zero values are the defaults named.
type Config struct {
	// URLs are the nodes: one URL (a load balancer) or several, tried in
	// turn from a random one. http:// or https://, with no path. Required.
	URLs []string
	// Transport is what subscriptions use: TransportWebSocket (the
	// default), TransportSSE or TransportPoll.
	Transport string
	// Token returns the bearer credential for every connection and
	// publish: a user's JWT or a backend's API key. Nil means none.
	Token func(context.Context) (string, error)
	// Ticket returns a fresh single-use ticket (POST /api/ticket) for every
	// connection, instead of Token. Nil means none.
	Ticket func(context.Context) (string, error)
	// Session is the session token of an identity to resume (from a
	// welcome or POST /api/session). Empty means the first connection's,
	// which every later connection of the Client keeps.
	Session string
	// HTTPClient makes the requests. Nil means one without an overall
	// timeout (streams and polls are long requests).
	HTTPClient *http.Client
	// MinBackoff and MaxBackoff bound the pause before a reconnection:
	// exponential, full jitter. Defaults DefaultMinBackoff and
	// DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// PollWait is how long each long poll is held. Zero means
	// protocol.DefaultPollWait.
	PollWait time.Duration
	// StallTimeout replaces a connection that delivers nothing, not even a
	// heartbeat, for this long. Default DefaultStallTimeout.
	StallTimeout time.Duration
	// OnState, when set, is told every change of a subscription's
	// connection. It must not block.
	OnState func(State)
}

// StaticToken is a Config.Token that always gives token.
func StaticToken(token string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return token, nil }
}

// States of a subscription's connection.
const (
	StateConnecting   = "connecting"
	StateConnected    = "connected"
	StateDisconnected = "disconnected"
)

// State is a subscription's connection as it changes.
type State struct {
	State     string // StateConnecting, StateConnected or StateDisconnected
	Transport string
	Node      string // the node serving it, once connected
	Err       error  // why it disconnected
}

// Client connects to nodes. It is safe for concurrent use.
type Client struct {
	cfg  Config
	hc   *http.Client
	urls []*url.URL

	mu      sync.Mutex
	next    int    // the URL to try next
	session string // the session every connection presents
	client  string // its client ID, once a welcome told it
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("client: no URL")
	}
	c := &Client{cfg: cfg, hc: cfg.HTTPClient, session: cfg.Session}
	for _, s := range cfg.URLs {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("client: %q is not an http:// or https:// URL", s)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		c.urls = append(c.urls, u)
	}
	switch cfg.Transport {
	case "":
		c.cfg.Transport = TransportWebSocket
	case TransportWebSocket, TransportSSE, TransportPoll:
	default:
		return nil, fmt.Errorf("client: unknown transport %q", cfg.Transport)
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.cfg.MinBackoff <= 0 {
		c.cfg.MinBackoff = DefaultMinBackoff
	}
	if c.cfg.MaxBackoff <= 0 {
		c.cfg.MaxBackoff = DefaultMaxBackoff
	}
	if c.cfg.StallTimeout <= 0 {
		c.cfg.StallTimeout = DefaultStallTimeout
	}
	if c.cfg.PollWait <= 0 {
		c.cfg.PollWait = protocol.DefaultPollWait
	}
	c.next = rand.IntN(len(c.urls))
	return c, nil
}

// ClientID is the client ID the nodes know this Client by, once a
// connection's welcome has told it ("" before).
func (c *Client) ClientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client
}

// Session is the session token every connection presents ("" before the
// first welcome, unless Config.Session gave one).
func (c *Client) Session() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// welcomed keeps the identity a welcome gave.
func (c *Client) welcomed(session, client string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == "" {
		c.session = session
	}
	if c.session == session {
		c.client = client
	}
}

// nextURL returns the node to connect to next: the URLs in turn.
func (c *Client) nextURL() *url.URL {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.urls[c.next%len(c.urls)]
	c.next++
	return u
}

// Error is what a node answered instead of doing what was asked: its HTTP
// status (0 for an error frame or event on an open connection) and its
// error code (protocol.Code*) and message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("pushcluster: %s: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("pushcluster: %d %s: %s", e.Status, e.Code, e.Message)
}

// readError reads a node's error answer.
func readError(resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var b protocol.ErrorBody
	if json.Unmarshal(body, &b) != nil || b.Error.Code == "" {
		return &Error{Status: resp.StatusCode, Code: "http_error", Message: strings.TrimSpace(string(body))}
	}
	return &Error{Status: resp.StatusCode, Code: b.Error.Code, Message: b.Error.Message}
}

// authorize adds the Client's credential: a fresh ticket in q's ticket
// parameter when Config.Ticket gives them and q is not nil, else the
// token in h.
func (c *Client) authorize(ctx context.Context, h http.Header, q url.Values) error {
	if c.cfg.Ticket != nil && q != nil {
		t, err := c.cfg.Ticket(ctx)
		if err != nil {
			return fmt.Errorf("client: getting a ticket: %w", err)
		}
		q.Set("ticket", t)
		return nil
	}
	if c.cfg.Token != nil {
		t, err := c.cfg.Token(ctx)
		if err != nil {
			return fmt.Errorf("client: getting a token: %w", err)
		}
		h.Set("Authorization", "Bearer "+t)
	}
	return nil
}

// PublishOption adds to a publish.
type PublishOption func(*protocol.PublishRequest)

// WithEvent names the message's event.
func WithEvent(event string) PublishOption {
	return func(r *protocol.PublishRequest) { r.Event = event }
}

// To sends the message to one client of the channel only.
func To(client string) PublishOption {
	return func(r *protocol.PublishRequest) { r.To = client }
}

// Exclude sends the message to every client of the channel but one.
func Exclude(client string) PublishOption {
	return func(r *protocol.PublishRequest) { r.Exclude = client }
}

// WithIdempotencyKey makes the publish one that a retry cannot duplicate:
// within the nodes' idempotency window a publish with the same key to the
// same channel, on any node, stores nothing and answers the first one's
// ID. Publish then retries failures itself.
func WithIdempotencyKey(key string) PublishOption {
	return func(r *protocol.PublishRequest) { r.IdempotencyKey = key }
}

// publishTries is how many times a publish with an idempotency key is
// sent, to the URLs in turn, while it fails without an answer.
const publishTries = 3

// Publish appends data to channel, through any node, and returns its
// entry ID. Without an idempotency key a failed publish is not retried:
// whether it was appended is then unknown, and a retry could append it
// twice. With one (WithIdempotencyKey), a publish that gets no answer, or
// an unavailable store, is sent again to the next URL, and the answer is
// the first append's ID however many reached Redis.
func (c *Client) Publish(ctx context.Context, channel, data string, opts ...PublishOption) (string, error) {
	req := protocol.PublishRequest{Channel: channel, Data: data}
	for _, o := range opts {
		o(&req)
	}
	tries := 1
	if req.IdempotencyKey != "" {
		tries = publishTries
	}
	b := backoff.New(c.cfg.MinBackoff, c.cfg.MaxBackoff)
	var err error
	for range tries {
		var a protocol.PublishAnswer
		if err = c.post(ctx, req, &a); err == nil {
			return a.ID, nil
		}
		var e *Error
		if errors.As(err, &e) && e.Status != http.StatusServiceUnavailable && e.Status != http.StatusBadGateway {
			return "", err // the node answered: a retry gets the same answer
		}
		if !b.Sleep(ctx) {
			break
		}
	}
	return "", err
}

// SendTo sends data to one client wherever it is connected, outside any
// channel: live only, at most once. The answer says whether a node held
// it; a client connected nowhere is an *Error with code
// protocol.CodeNotFound.
func (c *Client) SendTo(ctx context.Context, client, data string, opts ...PublishOption) (protocol.DirectAnswer, error) {
	req := protocol.PublishRequest{Client: client, Data: data}
	for _, o := range opts {
		o(&req)
	}
	var a protocol.DirectAnswer
	err := c.post(ctx, req, &a)
	return a, err
}

func (c *Client) post(ctx context.Context, body protocol.PublishRequest, answer any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.nextURL().String()+"/api/publish", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := c.authorize(ctx, req.Header, nil); err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	return json.NewDecoder(resp.Body).Decode(answer)
}
