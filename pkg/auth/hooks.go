package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults for Hooks.
const (
	DefaultHookTimeout       = 2 * time.Second
	DefaultHookMaxConcurrent = 64
)

// Hooks let the application's backend decide who connects and what they
// may subscribe to, instead of (or beside) the tokens it would otherwise
// mint: with a connect hook, a request that brings no credential is
// described to the backend (its cookies, chosen headers, address and
// transport), and the backend answers with the rights a token would carry,
// or refuses. A hook that is slow, down or answers anything else refuses
// the request: never open, never hanging.
type Hooks struct {
	// ConnectURL is POSTed a HookRequest for every request without a
	// credential (SSE, WebSocket and long-poll connections, tickets, the
	// API). Empty means none.
	ConnectURL string
	// ConnectHeaders are the request headers passed on to the connect
	// hook, by name. Cookies always are.
	ConnectHeaders []string
	// SubscribeURL is POSTed a SubscribeRequest for each subscription to a
	// channel SubscribeChannels matches, whatever admitted the connection.
	// Empty means none.
	SubscribeURL string
	// SubscribeChannels are the channels (names, or prefixes ending in '*')
	// the subscribe hook decides on. Nil means every channel.
	SubscribeChannels Patterns
	// Timeout bounds each call, the wait for a free slot included. Zero
	// means DefaultHookTimeout.
	Timeout time.Duration
	// MaxConcurrent bounds the calls in flight, so that a slow backend
	// holds at most that many requests; the rest wait for a slot within
	// Timeout. Zero means DefaultHookMaxConcurrent.
	MaxConcurrent int
	// Client makes the calls. Nil means one with no timeout of its own.
	Client *http.Client
	// ClientAddr returns a request's client address (behind trusted
	// proxies). Nil means the peer's address.
	ClientAddr func(*http.Request) netip.Addr
}

// HookRequest is what the connect hook is sent: the request to admit.
type HookRequest struct {
	// Transport is "sse", "ws", "poll", "ticket" or "api".
	Transport string            `json:"transport"`
	Path      string            `json:"path"`
	Address   string            `json:"address"`
	Channels  []string          `json:"channels,omitempty"`
	Cookies   map[string]string `json:"cookies"`
	Headers   map[string]string `json:"headers"`
}

// HookAnswer is the connect hook's 200 answer: the rights a token would
// carry. Expires is RFC 3339 or Unix seconds; absent, never.
type HookAnswer struct {
	User     string          `json:"user"`
	Channels []string        `json:"channels"`
	Publish  []string        `json:"publish"`
	Expires  json.RawMessage `json:"expires"`
}

// SubscribeRequest is what the subscribe hook is sent.
type SubscribeRequest struct {
	User      string `json:"user"`
	Client    string `json:"client"`
	Channel   string `json:"channel"`
	Transport string `json:"transport"`
}

// Errors of the hooks. ErrHookRefused is the backend's 401, ErrHookForbade
// its 403, ErrHookFailed anything else (a timeout, an error, a 500, an
// answer that does not parse): 503.
var (
	ErrHookRefused = errors.New("auth: refused by the connect hook")
	ErrHookForbade = errors.New("auth: forbidden by the hook")
	ErrHookFailed  = errors.New("auth: the hook did not answer")
)

// hooks calls the backend.
type hooks struct {
	cfg   Hooks
	slots chan struct{}
	stats hookCounters
}

type hookCounters struct{ admitted, refused, failed atomic.Uint64 }

func newHooks(cfg Hooks) *hooks {
	if cfg.ConnectURL == "" && cfg.SubscribeURL == "" {
		return nil
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultHookTimeout
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultHookMaxConcurrent
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	return &hooks{cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrent)}
}

// transportOf names what a request is for, from its path.
func transportOf(path string) string {
	switch path {
	case "/sse":
		return "sse"
	case "/ws":
		return "ws"
	case "/poll":
		return "poll"
	case "/api/ticket":
		return "ticket"
	}
	return "api"
}

// connect asks the connect hook about r.
func (h *hooks) connect(ctx context.Context, r *http.Request) (*Principal, error) {
	req := HookRequest{Transport: transportOf(r.URL.Path), Path: r.URL.Path,
		Cookies: map[string]string{}, Headers: map[string]string{}}
	if h.cfg.ClientAddr != nil {
		req.Address = h.cfg.ClientAddr(r).String()
	} else if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		req.Address = ap.Addr().String()
	}
	req.Channels = r.URL.Query()["channel"]
	for _, c := range r.Cookies() {
		req.Cookies[c.Name] = c.Value
	}
	for _, name := range h.cfg.ConnectHeaders {
		if v := r.Header.Get(name); v != "" {
			req.Headers[http.CanonicalHeaderKey(name)] = v
		}
	}
	var a HookAnswer
	if err := h.call(ctx, h.cfg.ConnectURL, req, &a); err != nil {
		return nil, err
	}
	p := &Principal{Subject: a.User, Channels: Patterns(a.Channels), Publish: Patterns(a.Publish), Via: "hook"}
	if len(a.Expires) > 0 && string(a.Expires) != "null" {
		exp, err := parseExpires(a.Expires)
		if err != nil {
			h.stats.failed.Add(1)
			return nil, fmt.Errorf("%w: expires %s: %v", ErrHookFailed, a.Expires, err)
		}
		if !time.Now().Before(exp) {
			return nil, fmt.Errorf("%w: the hook's rights expired at %s", ErrTokenExpired, exp.Format(time.RFC3339))
		}
		p.Expires = exp
	}
	return p, nil
}

func parseExpires(raw json.RawMessage) (time.Time, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return time.Parse(time.RFC3339, s)
	}
	sec, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return time.Time{}, errors.New("neither RFC 3339 nor Unix seconds")
	}
	return time.Unix(sec, 0), nil
}

// subscribe asks the subscribe hook whether p's client may subscribe to
// channel.
func (h *hooks) subscribe(ctx context.Context, p *Principal, client, channel, transport string) error {
	return h.call(ctx, h.cfg.SubscribeURL, SubscribeRequest{User: p.Subject, Client: client, Channel: channel, Transport: transport}, nil)
}

// call POSTs body to url within the timeout, a slot included, and decodes
// a 200 answer into answer (nil: any body).
func (h *hooks) call(ctx context.Context, url string, body, answer any) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-ctx.Done():
		h.stats.failed.Add(1)
		return fmt.Errorf("%w: %d calls already waiting on it", ErrHookFailed, h.cfg.MaxConcurrent)
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		h.stats.failed.Add(1)
		return fmt.Errorf("%w: %v", ErrHookFailed, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.cfg.Client.Do(req)
	if err != nil {
		h.stats.failed.Add(1)
		return fmt.Errorf("%w: %v", ErrHookFailed, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusOK:
		if answer != nil {
			if err := json.Unmarshal(msg, answer); err != nil {
				h.stats.failed.Add(1)
				return fmt.Errorf("%w: its answer is not JSON: %v", ErrHookFailed, err)
			}
		}
		h.stats.admitted.Add(1)
		return nil
	case http.StatusUnauthorized:
		h.stats.refused.Add(1)
		return fmt.Errorf("%w: %s", ErrHookRefused, hookMessage(msg))
	case http.StatusForbidden:
		h.stats.refused.Add(1)
		return fmt.Errorf("%w: %s", ErrHookForbade, hookMessage(msg))
	}
	h.stats.failed.Add(1)
	return fmt.Errorf("%w: it answered %s", ErrHookFailed, resp.Status)
}

// hookMessage is what a backend's refusal says, for the client: its JSON
// error's message, or its text, bounded.
func hookMessage(b []byte) string {
	var e struct {
		Error   any    `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &e) == nil {
		if e.Message != "" {
			return e.Message
		}
		if s, ok := e.Error.(string); ok {
			return s
		}
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200]
	}
	if s == "" {
		return "no reason given"
	}
	return s
}
