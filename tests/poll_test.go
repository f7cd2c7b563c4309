//go:build unix

package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pushcluster/pushcluster/pkg/node"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// poller speaks GET /poll by hand, one poll at a time, the way the
// protocol says: each poll from the last answer's since, with its key.
type poller struct {
	t        testing.TB
	channels []string
	since    string
	key      string
	query    url.Values // more parameters: a ticket, a session
	frames   []protocol.ServerFrame
	node     string
}

func newPoller(t testing.TB, channels ...string) *poller {
	return &poller{t: t, channels: channels, query: url.Values{}}
}

// pollURL is the URL of the next poll to n, waiting at most wait.
func (p *poller) pollURL(n *testNode, wait string) string {
	q := url.Values{"channel": p.channels}
	for k, v := range p.query {
		q[k] = v
	}
	if p.since != "" {
		q.Set("since", p.since)
	}
	if p.key != "" {
		q.Set("poll", p.key)
	}
	if wait != "" {
		q.Set("wait", wait)
	}
	return n.base + "/poll?" + q.Encode()
}

// poll polls n once and keeps what it answers.
func (p *poller) poll(n *testNode, wait string) protocol.PollAnswer {
	p.t.Helper()
	status, body := httpGet(p.t, p.pollURL(n, wait))
	if status != http.StatusOK {
		p.t.Fatalf("poll: %d %s", status, body)
	}
	var a protocol.PollAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		p.t.Fatalf("poll answer %s: %v", body, err)
	}
	if a.Messages == nil {
		p.t.Fatalf("poll answer %s: messages is null", body)
	}
	p.since, p.key, p.node = a.Since, a.Poll, a.Node
	p.frames = append(p.frames, a.Messages...)
	return a
}

// of returns the frames of type typ received so far.
func (p *poller) of(typ string) []protocol.ServerFrame {
	var out []protocol.ServerFrame
	for _, f := range p.frames {
		if f.Type == typ {
			out = append(out, f)
		}
	}
	return out
}

// data returns the data of every message received so far, in order.
func (p *poller) data() []string {
	var out []string
	for _, f := range p.of(protocol.TypeMessage) {
		out = append(out, *f.Data)
	}
	return out
}

// pollUntil polls n until it holds n messages or total passes.
func (p *poller) pollUntil(n *testNode, count int, total time.Duration) []string {
	p.t.Helper()
	deadline := time.Now().Add(total)
	for len(p.data()) < count {
		if time.Now().After(deadline) {
			p.t.Fatalf("%d messages after %v, want %d", len(p.data()), total, count)
		}
		p.poll(n, "1s")
	}
	return p.data()
}

func httpGet(t testing.TB, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// A first poll answers at once with the welcome and the start position;
// later ones wait for something after since, and a publish answers the
// held poll. A poll that times out answers [] and the same since.
func TestPollHoldsAndAnswers(t *testing.T) {
	c := newCluster(t)
	n := c.start("a")
	p := newPoller(t, "news")
	first := time.Now()
	a := p.poll(n, "20s")
	if time.Since(first) > 10*time.Second {
		t.Fatalf("the first poll was held for %v", time.Since(first))
	}
	if len(a.Messages) != 1 || a.Messages[0].Type != protocol.TypeWelcome || a.Messages[0].Client == "" || a.Messages[0].Session == "" {
		t.Fatalf("first answer %+v, want the welcome alone", a)
	}
	if a.Since == "" || a.Poll == "" || a.Node != "a" {
		t.Fatalf("first answer %+v: want a start position, a key and the node", a)
	}
	start := a.Since
	a = p.poll(n, "300ms")
	if len(a.Messages) != 0 || a.Since != start || a.Poll == "" {
		t.Fatalf("a poll that timed out answered %+v, want [] from %s", a, start)
	}
	done := make(chan protocol.PollAnswer)
	go func() { done <- p.poll(n, "20s") }()
	time.Sleep(200 * time.Millisecond) // the poll is held
	id := c.xadd("news", "event", "myEve", "data", "one")
	a = <-done
	if len(a.Messages) != 1 || a.Messages[0].Type != protocol.TypeMessage || a.Messages[0].ID != id ||
		a.Messages[0].Event != "myEve" || *a.Messages[0].Data != "one" || a.Messages[0].Channel != "news" {
		t.Fatalf("held poll answered %+v, want the message %s", a, id)
	}
	if a.Since != id {
		t.Fatalf("since %q after message %s", a.Since, id)
	}
}

// What is published between two polls waits for the next, on the same
// session: in order, exactly once, whatever the polls' timing.
func TestPollExactlyOnceUnderSteadyPublishing(t *testing.T) {
	c := newCluster(t)
	n := c.start("a")
	p := newPoller(t, "a", "b")
	p.poll(n, "0s")
	stop := make(chan struct{})
	published := make(chan []string)
	go func() {
		var want []string
		for i := 0; ; i++ {
			select {
			case <-stop:
				published <- want
				return
			default:
			}
			ch := []string{"a", "b"}[i%2]
			c.xadd(ch, "data", fmt.Sprintf("%s%d", ch, i))
			want = append(want, fmt.Sprintf("%s%d", ch, i))
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for range 40 {
		p.poll(n, "50ms")
	}
	close(stop)
	want := <-published
	got := p.pollUntil(n, len(want), 10*time.Second)
	equalPerChannel(t, "long-polled", got, want)
}

// Bad input gets the errors an event stream gets: 400 with a JSON error
// for a bad wait or channel list, a gap for a since that is no position.
func TestPollBadInput(t *testing.T) {
	c := newCluster(t)
	n := c.start("a")
	for _, tc := range []struct{ query, code string }{
		{"channel=a&wait=-1", protocol.CodeInvalidWait},
		{"channel=a&wait=-1s", protocol.CodeInvalidWait},
		{"channel=a&wait=1h", protocol.CodeInvalidWait},
		{"channel=a&wait=soon", protocol.CodeInvalidWait},
		{"", protocol.CodeInvalidChannel},
		{"channel=", protocol.CodeInvalidChannel},
		{"channel=a%00b", protocol.CodeInvalidChannel},
		{"channel=a&session=junk", protocol.CodeInvalidSession},
		{"channel=a;b", protocol.CodeInvalidQuery},
		{manyChannels(1000), protocol.CodeInvalidChannel},
	} {
		status, body := httpGet(t, n.base+"/poll?"+tc.query)
		var e protocol.ErrorBody
		if status != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Error.Code != tc.code {
			t.Errorf("GET /poll?%.60s: %d %s, want 400 %s", tc.query, status, body, tc.code)
		}
	}
	for _, tc := range []struct {
		since, reason string
		channels      []string
	}{{"junk", "malformed", []string{"a"}}, {"00000000:1-0,1-0", "mismatch", []string{"a", "b"}},
		{strings.Repeat("9", 20000), "malformed", []string{"a"}}} {
		since := tc.since
		p := newPoller(t, tc.channels...)
		p.since = since
		p.poll(n, "0s")
		gaps := p.of(protocol.TypeGap)
		if len(gaps) != len(tc.channels) || gaps[0].Reason != tc.reason || gaps[0].Channel != "a" || gaps[0].Resume == "" {
			t.Errorf("since %.40q: gaps %+v, want a %s gap per channel", since, gaps, tc.reason)
		}
		if p.since == since || p.since == "" {
			t.Errorf("since %.40q: answered since %q, want the start position", since, p.since)
		}
	}
	if status, _ := httpGet(t, n.base+"/poll?channel=a&since="+strings.Repeat("9", 70000)); status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a since over the header limit: %d", status)
	}
	// The node and its other clients are unaffected.
	p := newPoller(t, "a")
	p.poll(n, "0s")
	c.xadd("a", "data", "still here")
	equalStrings(t, "after bad polls", p.pollUntil(n, 1, 5*time.Second), []string{"still here"})
}

// A position taken on an event stream resumes a long poll on another
// node, and a long poll's since resumes an event stream elsewhere: in
// order, exactly once, while XADDs go on.
func TestPollResumesAcrossTransportsAndNodes(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("a"), c.start("b")
	var want []string
	pub := func(from, to int) {
		for i := from; i < to; i++ {
			c.xadd("news", "data", fmt.Sprint(i))
			want = append(want, fmt.Sprint(i))
		}
	}
	s := openSSE(t, sseURL(a, "news"), "")
	s.waitWelcome()
	pub(0, 10)
	got := s.waitData(10)
	s.close()
	pub(10, 20)

	p := newPoller(t, "news")
	p.since = s.lastEventID()
	got = append(got, p.pollUntil(b, 10, 10*time.Second)...)
	pub(20, 30)
	p.pollUntil(b, 20, 10*time.Second)
	got = append(got, p.data()[10:]...)
	pub(30, 40)

	s2 := openSSE(t, sseURL(a, "news"), p.since)
	got = append(got, s2.waitData(10)...)
	equalStrings(t, "SSE → poll on another node → SSE", got, want)
	if len(p.of(protocol.TypeGap)) != 0 {
		t.Fatalf("gaps %+v", p.of(protocol.TypeGap))
	}
}

// A position trimmed away gets its gap, then what is still there.
func TestPollTrimmedPositionGetsGap(t *testing.T) {
	c := newCluster(t)
	n := c.start("a")
	old := c.xadd("news", "data", "old")
	for i := range 5 {
		c.xadd("news", "data", fmt.Sprint(i))
	}
	if err := c.rdb.XTrimMaxLen(t.Context(), c.prefix+"news", 2).Err(); err != nil {
		t.Fatal(err)
	}
	p := newPoller(t, "news")
	p.since = old
	equalStrings(t, "after the gap", p.pollUntil(n, 2, 5*time.Second), []string{"3", "4"})
	if g := p.of(protocol.TypeGap); len(g) != 1 || g[0].Reason != "trimmed" || g[0].Channel != "news" {
		t.Fatalf("gaps %+v, want one trimmed", g)
	}
}

// A long-polling client is connected while a poll is held and for the
// linger after: in /api/clients as transport poll, in presence and the
// cluster's load, and a message to its client waits for its next poll.
// Then it is gone.
func TestPollLingersAndTakesDirectMessages(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *node.Config) { cfg.Transport.PollLinger = time.Second })
	p := newPoller(t, "news")
	p.poll(n, "0s")
	client := p.of(protocol.TypeWelcome)[0].Client
	var list struct {
		Clients []struct{ ID, Transport string }
	}
	getJSON(t, n.base+"/api/clients", &list)
	if len(list.Clients) != 1 || list.Clients[0].ID != client || list.Clients[0].Transport != "poll" {
		t.Fatalf("clients %+v, want %s on poll", list.Clients, client)
	}
	var members struct {
		Nodes []struct{ Connections map[string]int }
	}
	getJSON(t, n.base+"/api/cluster", &members)
	if got := members.Nodes[0].Connections; got["poll"] != 1 || got["sse"] != 0 || got["ws"] != 0 {
		t.Fatalf("cluster connections %v, want poll 1", got)
	}
	var presence struct{ Clients []struct{ ID string } }
	getJSON(t, n.base+"/api/presence?channel=news", &presence)
	if len(presence.Clients) != 1 || presence.Clients[0].ID != client {
		t.Fatalf("presence %+v", presence)
	}
	status, body := postJSON(t, n.base+"/api/publish", map[string]any{"client": client, "data": "just you"})
	if status != http.StatusOK || !strings.Contains(string(body), `"delivered":true`) {
		t.Fatalf("direct publish: %d %s", status, body)
	}
	p.poll(n, "5s")
	if d := p.of(protocol.TypeDirect); len(d) != 1 || *d[0].Data != "just you" {
		t.Fatalf("direct frames %+v", d)
	}
	checkFor(t, 5*time.Second, func() error {
		getJSON(t, n.base+"/api/clients", &list)
		if len(list.Clients) != 0 {
			return fmt.Errorf("clients %+v after the linger", list.Clients)
		}
		return nil
	})
	// Its key is spent with the session: the next poll starts another,
	// from its since, and loses nothing.
	c.xadd("news", "data", "later")
	equalStrings(t, "after the linger", p.pollUntil(n, 1, 5*time.Second), []string{"later"})
}

// A key continues its session once; a poll that comes back with an older
// since (its answer was lost) starts over from there and loses nothing.
func TestPollLostAnswerLosesNothing(t *testing.T) {
	c := newCluster(t)
	n := c.start("a")
	p := newPoller(t, "news")
	p.poll(n, "0s")
	c.xadd("news", "data", "1")
	before, key := p.since, p.key
	p.pollUntil(n, 1, 5*time.Second)
	// The answer carrying "1" never arrived: poll again with the old since
	// and the old key.
	lost := newPoller(t, "news")
	lost.since, lost.key = before, key
	equalStrings(t, "after a lost answer", lost.pollUntil(n, 1, 5*time.Second), []string{"1"})
}

// A ticket opens one poll session: its answers' keys continue it on that
// node without a credential; anything else (no key, a spent key, another
// node) needs a credential again, and a used ticket is refused. A key
// never widens what the session may read.
func TestPollTicketSession(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("a", secured), c.start("b", secured)
	tok := token(t, grant{sub: "alice", channels: []string{"news"}})
	ticket := func() string {
		status, body, _ := call(t, nil, "POST", a.base+"/api/ticket", nil, bearer(tok)...)
		var r struct{ Ticket string }
		if status != 200 || jsonUnmarshal(body, &r) != nil {
			t.Fatalf("POST /api/ticket: %d %s", status, body)
		}
		return r.Ticket
	}
	status, body := httpGet(t, a.base+"/poll?channel=news")
	checkError(t, "a poll without a credential", status, body, 401, "unauthorized")

	p := newPoller(t, "news")
	p.query.Set("ticket", ticket())
	p.poll(a, "0s")
	used := p.query.Get("ticket")
	c.xadd("news", "data", "1")
	p.pollUntil(a, 1, 5*time.Second) // on the key alone: the ticket is spent
	status, body = httpGet(t, a.base+"/poll?channel=news&ticket="+url.QueryEscape(used))
	checkError(t, "a used ticket", status, body, 401, "invalid_ticket")

	// The key with another channel is not the session: a credential is
	// needed, and the spent ticket is no credential.
	other := newPoller(t, "secret")
	other.key, other.query = p.key, p.query
	status, body = httpGet(t, other.pollURL(a, "0s"))
	checkError(t, "a key for other channels", status, body, 401, "invalid_ticket")

	// Another node knows no key: a fresh ticket resumes there from since.
	c.xadd("news", "data", "2")
	status, body = httpGet(t, p.pollURL(b, "0s"))
	checkError(t, "a key on another node", status, body, 401, "invalid_ticket")
	p.query.Set("ticket", ticket())
	p.key = ""
	equalStrings(t, "on b with a new ticket", p.pollUntil(b, 2, 5*time.Second), []string{"1", "2"})
}

// Long polls are cross-origin requests like the API's: allowed origins
// get CORS headers, others none.
func TestPollCORS(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *node.Config) { cfg.Transport.AllowedOrigins = []string{"https://app.example"} })
	for origin, allowed := range map[string]bool{"https://app.example": true, "https://evil.example": false} {
		status, _, h := call(t, nil, "GET", n.base+"/poll?channel=a&wait=0s", nil, "Origin", origin)
		if status != 200 || (h.Get("Access-Control-Allow-Origin") == origin) != allowed {
			t.Errorf("origin %s: %d, Access-Control-Allow-Origin %q", origin, status, h.Get("Access-Control-Allow-Origin"))
		}
	}
}

// A session whose token expires is ended, and its client told so in the
// answer that ends it.
func TestPollTokenExpiry(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", secured)
	p := newPoller(t, "news")
	p.query.Set("token", token(t, grant{sub: "alice", channels: []string{"news"}, ttl: 1500 * time.Millisecond}))
	p.poll(n, "0s")
	a := p.poll(n, "10s")
	if e := p.of(protocol.TypeError); len(e) != 1 || e[0].Code != protocol.CodeTokenExpired || a.Poll != "" {
		t.Fatalf("answer %+v, errors %+v: want token_expired and no key", a, e)
	}
}

// Many polls with one key at once: one continues the session, the others
// start sessions of their own; none is lost, none takes another's frames.
func TestPollConcurrentKey(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *node.Config) { cfg.Transport.PollLinger = 500 * time.Millisecond })
	p := newPoller(t, "news")
	p.poll(n, "0s")
	c.xadd("news", "data", "1")
	answers := make(chan protocol.PollAnswer, 20)
	for range 20 {
		go func() {
			q := *p
			q.frames = nil
			status, body := httpGet(t, q.pollURL(n, "1s"))
			var a protocol.PollAnswer
			if status != 200 || json.Unmarshal(body, &a) != nil {
				t.Errorf("poll: %d %s", status, body)
			}
			answers <- a
		}()
	}
	for range 20 {
		a := <-answers
		got := 0
		for _, f := range a.Messages {
			if f.Type == protocol.TypeMessage {
				if *f.Data != "1" {
					t.Errorf("message %q", *f.Data)
				}
				got++
			}
		}
		if got > 1 {
			t.Errorf("an answer with %d copies", got)
		}
	}
	checkFor(t, 10*time.Second, func() error {
		var list struct{ Clients []struct{ ID string } }
		getJSON(t, n.base+"/api/clients", &list)
		if len(list.Clients) != 0 {
			return fmt.Errorf("%d clients after the linger", len(list.Clients))
		}
		return nil
	})
}

// A draining node, and one shedding load, answer their held polls at
// once, without a key, and their clients poll on elsewhere from their
// since, losing nothing: long-polling clients move like the others.
func TestPollMovedByDrainAndShedding(t *testing.T) {
	for _, tc := range []struct {
		name string
		move func(*testNode)
	}{
		{"drain", func(n *testNode) { go n.stop() }},
		{"shed", func(n *testNode) {
			if got := n.Registry().Shed(1); got != 1 {
				t.Errorf("shed %d", got)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			a := c.start("a", func(cfg *node.Config) { cfg.Transport.DrainTimeout = 100 * time.Millisecond })
			b := c.start("b")
			p := newPoller(t, "news")
			p.poll(a, "0s")
			c.xadd("news", "data", "1")
			p.pollUntil(a, 1, 5*time.Second)
			done := make(chan protocol.PollAnswer)
			go func() { done <- p.poll(a, "30s") }()
			time.Sleep(200 * time.Millisecond)
			tc.move(a)
			select {
			case ans := <-done:
				if ans.Poll != "" {
					t.Fatalf("answered with a key: %+v", ans)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the held poll was not answered")
			}
			c.xadd("news", "data", "2")
			equalStrings(t, "after moving", p.pollUntil(b, 2, 5*time.Second), []string{"1", "2"})
		})
	}
}
