package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/tcpproxy"
	"github.com/pushcluster/pushcluster/internal/testredis"
	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/client"
	"github.com/pushcluster/pushcluster/pkg/node"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

var transports = []string{client.TransportWebSocket, client.TransportSSE, client.TransportPoll}

// env is a Redis and a key prefix the nodes of a test share.
type env struct {
	t      *testing.T
	prefix string
	rdb    *redis.Client
}

func newEnv(t *testing.T) *env {
	return &env{t: t, prefix: testredis.Prefix(t), rdb: testredis.Client(t)}
}

func (e *env) node(name string, mod ...func(*node.Config)) *testNode {
	e.t.Helper()
	n := startNodeFor(e.t, testredis.URL(e.t), e.prefix, name, mod...)
	e.t.Cleanup(n.stop)
	return n
}

func (e *env) xadd(channel, data string) string {
	e.t.Helper()
	id, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: e.prefix + channel, Values: []any{"data", data}}).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func newClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	}
	if cfg.PollWait == 0 {
		cfg.PollWait = 2 * time.Second
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func subscribe(t *testing.T, c *client.Client, since string, channels ...string) *client.Subscription {
	t.Helper()
	s, err := c.Subscribe(context.Background(), channels, since)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// collect reads events until it holds n messages, or fails the test.
func collect(t *testing.T, s *client.Subscription, n int) (msgs []*client.Message, gaps []*client.Gap) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(msgs) < n {
		ev, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(msgs), n, err)
		}
		switch e := ev.(type) {
		case *client.Message:
			msgs = append(msgs, e)
		case *client.Gap:
			gaps = append(gaps, e)
		}
	}
	return msgs, gaps
}

func data(msgs []*client.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Data
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%s: got %d %q, want %d %q", what, len(got), got, len(want), want)
	}
}

// waitConnected waits for the subscription to be served by a node.
func waitConnected(t *testing.T, s *client.Subscription) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Node() == "" {
		if time.Now().After(deadline) {
			t.Fatal("never connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Every transport delivers what is published on several channels, each
// channel in order, exactly once; publishes go through the API and come
// back with their entry IDs. Order holds within a channel, not across
// channels: two channels are two streams, read as their notifications
// ring (or, until the node has proven its notifications, when it polls).
func TestSubscribeAndPublish(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t)
			n := e.node("a")
			c := newClient(t, client.Config{URLs: []string{n.url}, Transport: tr})
			s := subscribe(t, c, "", "news", "sport")
			waitConnected(t, s)
			time.Sleep(100 * time.Millisecond) // the subscriptions are live
			want := map[string][]string{}
			for i := range 10 {
				ch := []string{"news", "sport"}[i%2]
				id, err := c.Publish(context.Background(), ch, fmt.Sprint(i), client.WithEvent("e"))
				if err != nil || id == "" {
					t.Fatalf("publish: %q %v", id, err)
				}
				want[ch] = append(want[ch], fmt.Sprint(i))
			}
			msgs, gaps := collect(t, s, 10)
			got := map[string][]string{}
			for _, m := range msgs {
				got[m.Channel] = append(got[m.Channel], m.Data)
				if m.Event != "e" {
					t.Fatalf("event %q: %+v", m.Event, m)
				}
			}
			equal(t, "received on news", got["news"], want["news"])
			equal(t, "received on sport", got["sport"], want["sport"])
			if len(gaps) != 0 {
				t.Fatalf("gaps %v", gaps)
			}
			if c.ClientID() == "" || c.Session() == "" {
				t.Fatalf("client %q session %q", c.ClientID(), c.Session())
			}
		})
	}
}

// A subscription survives its node: drained (stopped), or cut off the
// network, it resumes on the other node from the last position it
// delivered, exactly once and in order while XADDs go on. A position taken
// on one transport resumes another.
func TestResumeAnywhere(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t)
			a, b := e.node("a"), e.node("b")
			path := tcpproxy.New(t, strings.TrimPrefix(a.url, "http://"))
			c := newClient(t, client.Config{URLs: []string{"http://" + path.Addr, b.url}, Transport: tr, StallTimeout: 3 * time.Second})
			// Start on a, through the path that will be cut.
			var s *client.Subscription
			for s == nil || s.Node() != "a" {
				if s != nil {
					s.Close()
				}
				s = subscribe(t, c, "", "news")
				waitConnected(t, s)
			}
			stop := make(chan struct{})
			published := make(chan []string, 1)
			go func() {
				var want []string
				for i := 0; ; i++ {
					select {
					case <-stop:
						published <- want
						return
					default:
					}
					if e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: e.prefix + "news", Values: []any{"data", fmt.Sprint(i)}}).Err() == nil {
						want = append(want, fmt.Sprint(i))
					}
					time.Sleep(3 * time.Millisecond)
				}
			}()
			stopOnce := sync.OnceFunc(func() { close(stop) })
			t.Cleanup(stopOnce)
			got, _ := collect(t, s, 20)
			path.Cut() // a network failure: no goodbye
			got2, _ := collect(t, s, 20)
			if s.Node() != "b" {
				t.Fatalf("served by %q after the cut, want b", s.Node())
			}
			stopOnce()
			want := <-published
			rest, gaps := collect(t, s, len(want)-40)
			all := append(append(got, got2...), rest...)
			equal(t, "across the cut", data(all), want)
			if len(gaps) != 0 {
				t.Fatalf("gaps %+v", gaps)
			}
			// Another transport, from the position this one reached.
			other := transports[(indexOf(transports, tr)+1)%len(transports)]
			c2 := newClient(t, client.Config{URLs: []string{b.url}, Transport: other})
			s2 := subscribe(t, c2, s.Position(), "news")
			e.xadd("news", "after")
			next, _ := collect(t, s2, 1)
			equal(t, "on "+other+" from "+tr+"'s position", data(next), []string{"after"})
		})
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// A position that was trimmed away comes back as a *Gap value, then what
// is still there.
func TestGapIsAValue(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t)
			n := e.node("a")
			old := e.xadd("news", "old")
			for i := range 5 {
				e.xadd("news", fmt.Sprint(i))
			}
			if err := e.rdb.XTrimMaxLen(context.Background(), e.prefix+"news", 2).Err(); err != nil {
				t.Fatal(err)
			}
			c := newClient(t, client.Config{URLs: []string{n.url}, Transport: tr})
			s := subscribe(t, c, old, "news")
			msgs, gaps := collect(t, s, 2)
			equal(t, "after the gap", data(msgs), []string{"3", "4"})
			if len(gaps) != 1 || gaps[0].Reason != "trimmed" || gaps[0].Channel != "news" {
				t.Fatalf("gaps %+v", gaps)
			}
		})
	}
}

var secret = []byte("client-test-secret-client-test-secret!")

func secured(cfg *node.Config) {
	cfg.Auth.Secret = secret
	cfg.Auth.APIKeys = []string{"client-test-api-key"}
}

func userToken(t *testing.T, sub string, channels ...string) string {
	c := auth.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}, Channels: channels}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A ticket source gives every connection a fresh ticket: a subscription
// reconnects to another node with a new one, and loses nothing.
func TestTicketSource(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t)
			a, b := e.node("a", secured), e.node("b", secured)
			tok := userToken(t, "alice", "news")
			tickets := 0
			ticket := func(ctx context.Context) (string, error) {
				tickets++
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.url+"/api/ticket", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return "", err
				}
				defer resp.Body.Close()
				var r struct{ Ticket string }
				if err := jsonDecode(resp, &r); err != nil {
					return "", err
				}
				return r.Ticket, nil
			}
			c := newClient(t, client.Config{URLs: []string{a.url, b.url}, Transport: tr, Ticket: ticket})
			s := subscribe(t, c, "", "news")
			waitConnected(t, s)
			first := s.Node()
			e.xadd("news", "1")
			collect(t, s, 1)
			map[string]*testNode{"a": a, "b": b}[first].stop()
			e.xadd("news", "2")
			msgs, _ := collect(t, s, 1)
			equal(t, "after the node stopped", data(msgs), []string{"2"})
			if tickets < 2 {
				t.Fatalf("%d tickets for two connections", tickets)
			}
		})
	}
}

// What no reconnection mends ends the subscription with the node's error:
// a channel the credential may not read. Publishes answer errors as
// *client.Error values.
func TestErrorsAreValues(t *testing.T) {
	e := newEnv(t)
	n := e.node("a", secured)
	for _, tr := range transports {
		c := newClient(t, client.Config{URLs: []string{n.url}, Transport: tr, Token: client.StaticToken(userToken(t, "alice", "news"))})
		s := subscribe(t, c, "", "secret")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := s.Next(ctx)
		cancel()
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != protocol.CodeForbidden {
			t.Errorf("%s: a forbidden channel: %v", tr, err)
		}
	}
	c := newClient(t, client.Config{URLs: []string{n.url}, Token: client.StaticToken(userToken(t, "alice", "news"))})
	_, err := c.Publish(context.Background(), "news", "hi")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusForbidden || ce.Code != protocol.CodeForbidden {
		t.Errorf("a publish without the right: %v", err)
	}
	api := newClient(t, client.Config{URLs: []string{n.url}, Token: client.StaticToken("client-test-api-key")})
	if _, err := api.Publish(context.Background(), "bad\x00channel", "hi"); !errors.As(err, &ce) || ce.Code != protocol.CodeInvalidChannel {
		t.Errorf("a bad channel: %v", err)
	}
	if _, err := api.SendTo(context.Background(), "nobody", "hi"); !errors.As(err, &ce) || ce.Code != protocol.CodeNotFound {
		t.Errorf("to a client connected nowhere: %v", err)
	}
	if _, err := api.Publish(context.Background(), "news", "ok"); err != nil {
		t.Errorf("an allowed publish: %v", err)
	}
}

// A message to the client itself arrives as a *Direct on any transport.
func TestDirect(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t)
			n := e.node("a")
			c := newClient(t, client.Config{URLs: []string{n.url}, Transport: tr})
			s := subscribe(t, c, "", "news")
			waitConnected(t, s)
			a, err := c.SendTo(context.Background(), c.ClientID(), "just you", client.WithEvent("note"))
			if err != nil || !a.Delivered {
				t.Fatalf("SendTo: %+v %v", a, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ev, err := s.Next(ctx)
			d, ok := ev.(*client.Direct)
			if err != nil || !ok || d.Data != "just you" || d.Event != "note" {
				t.Fatalf("got %#v %v", ev, err)
			}
		})
	}
}

// Close ends a subscription at once, whatever it is doing, and Next then
// says so.
func TestClose(t *testing.T) {
	for _, tr := range transports {
		e := newEnv(t)
		n := e.node("a")
		c := newClient(t, client.Config{URLs: []string{n.url}, Transport: tr})
		s := subscribe(t, c, "", "news")
		waitConnected(t, s)
		s.Close()
		if _, err := s.Next(context.Background()); !errors.Is(err, client.ErrClosed) {
			t.Errorf("%s: Next after Close: %v", tr, err)
		}
	}
}

func jsonDecode(resp *http.Response, v any) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
