//go:build unix

package tests

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"
)

// libPage loads the browser library the node serves, through the proxy,
// and subscribes to the channel its query names with the options it
// names, keeping what it gets in window.got, window.gaps and
// window.states.
const libPage = `<!doctype html>
<meta charset="utf-8">
<title>PushClient test</title>
<script src="/push.js"></script>
<script>
const q = new URLSearchParams(location.search);
window.got = []; window.gaps = []; window.states = []; window.errors = []; window.tickets = 0;
const token = q.get('token');
window.push = new PushClient(location.origin, {
  shared: q.get('shared') === '1',
  connectTimeout: 2000,
  upgradeAfter: +q.get('upgrade') || 60000,
  minBackoff: 50, maxBackoff: 500,
  pollWait: 5000,
  ticket: token && (async () => {
    tickets++;
    const r = await fetch('/api/ticket', {method: 'POST', headers: {Authorization: 'Bearer ' + token}});
    return (await r.json()).ticket;
  }),
});
push.on('state', s => states.push(s));
push.on('error', e => errors.push(e.code + ': ' + e.message));
push.subscribe(q.get('channel'), m => got.push(m.data), {onGap: g => gaps.push(g)});
window.connected = () => { const s = push.state; return s.state === 'connected' ? s.transport + '@' + s.node : ''; };
</script>
<p>PushClient test page</p>`

// libModulePage imports the ES module instead.
const libModulePage = `<!doctype html>
<meta charset="utf-8">
<script type="module">
import {PushClient} from '/push.mjs';
window.got = [];
window.push = new PushClient(undefined, {connectTimeout: 2000});
push.subscribe('mod', m => got.push(m.data));
window.connected = () => push.state.state === 'connected' ? push.state.transport : '';
</script>`

var libPages = map[string]string{"/test/lib.html": libPage, "/test/module.html": libModulePage}

// openLib opens the library's test page on channel in tab and waits until
// it is connected; it returns "<transport>@<node>".
func openLib(t *testing.T, tab context.Context, p *webProxy, channel string, shared bool, more ...string) string {
	t.Helper()
	u := p.srv.URL + "/test/lib.html?channel=" + channel
	if shared {
		u += "&shared=1"
	}
	for _, m := range more {
		u += "&" + m
	}
	run(t, tab, chromedp.Navigate(u))
	var on string
	checkFor(t, browserWait, func() error {
		var err error
		if on, err = evalJSON[string](tab, `connected()`); err == nil && on == "" {
			err = fmt.Errorf("not connected")
		}
		return err
	})
	return on
}

// publishSteadily XADDs to channel every few milliseconds until stop is
// closed, and then sends what it published.
func publishSteadily(c *cluster, channel string, stop <-chan struct{}) <-chan []string {
	out := make(chan []string, 1)
	go func() {
		var sent []string
		for i := 0; ; i++ {
			select {
			case <-stop:
				out <- sent
				return
			case <-time.After(15 * time.Millisecond):
			}
			if err := c.rdb.XAdd(context.Background(), xaddArgs(c.prefix+channel, fmt.Sprint(i))).Err(); err == nil {
				sent = append(sent, fmt.Sprint(i))
			}
		}
	}()
	return out
}

// waitGot waits until the page in tab holds want, exactly, in order.
func waitGot(t *testing.T, tab context.Context, want []string) {
	t.Helper()
	var got []string
	checkFor(t, 20*time.Second, func() error {
		var err error
		got, err = evalJSON[[]string](tab, `got`)
		if err != nil {
			return err
		}
		if len(got) < len(want) {
			return fmt.Errorf("%d of %d messages", len(got), len(want))
		}
		return nil
	})
	equalStrings(t, "the page's messages", got, want)
	if gaps := evalOK[[]any](t, tab, `gaps`); len(gaps) != 0 {
		t.Fatalf("gaps %v", gaps)
	}
}

// A proxy that refuses WebSocket upgrades: the library runs on the event
// stream, and gets every message once, in order. Once upgrades get
// through again, it climbs back to the WebSocket, still losing nothing.
func TestLibraryFallsBackToSSE(t *testing.T) {
	c := newCluster(t)
	p := newWebProxy(t, libPages, c.start("a"), c.start("b"))
	p.refuseUpgrades.Store(true)
	tab := newChromium(t)
	stop := make(chan struct{})
	if on := openLib(t, tab, p, "news", false, "upgrade=3000"); !strings.HasPrefix(on, "sse@") {
		t.Fatalf("connected over %s, want sse", on)
	}
	sent := publishSteadily(c, "news", stop)
	time.Sleep(time.Second)
	p.refuseUpgrades.Store(false)
	checkFor(t, 20*time.Second, func() error {
		on, err := evalJSON[string](tab, `connected()`)
		if err == nil && !strings.HasPrefix(on, "websocket@") {
			err = fmt.Errorf("on %q", on)
		}
		return err
	})
	time.Sleep(time.Second)
	close(stop)
	waitGot(t, tab, <-sent)
}

// With a ticket source, every connection gets a fresh ticket: the node
// lost, the library resumes on the other with a new one.
func TestLibraryTickets(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("a", secured), c.start("b", secured)
	p := newWebProxy(t, libPages, a, b)
	tab := newChromium(t)
	tok := token(t, grant{sub: "alice", channels: []string{"news"}})
	on := openLib(t, tab, p, "news", false, "token="+tok)
	stop := make(chan struct{})
	sent := publishSteadily(c, "news", stop)
	time.Sleep(time.Second)
	p.kill(map[string]*testNode{"a": a, "b": b}[on[strings.Index(on, "@")+1:]])
	checkFor(t, 20*time.Second, func() error {
		now, err := evalJSON[string](tab, `connected()`)
		if err == nil && (now == on || now == "") {
			err = fmt.Errorf("still on %q", now)
		}
		return err
	})
	time.Sleep(time.Second)
	close(stop)
	waitGot(t, tab, <-sent)
	if n := evalOK[float64](t, tab, `tickets`); n < 2 {
		t.Fatalf("%v tickets for two connections", n)
	}
}

// A proxy that buffers responses whole (and passes no WebSocket): no
// stream gets through, so the library long-polls, and loses nothing.
func TestLibraryFallsBackToPoll(t *testing.T) {
	c := newCluster(t)
	p := newWebProxy(t, libPages, c.start("a"), c.start("b"))
	p.refuseUpgrades.Store(true)
	p.bufferWhole.Store(true)
	tab := newChromium(t)
	if on := openLib(t, tab, p, "news", false); !strings.HasPrefix(on, "poll@") {
		t.Fatalf("connected over %s, want poll", on)
	}
	stop := make(chan struct{})
	sent := publishSteadily(c, "news", stop)
	time.Sleep(2 * time.Second)
	close(stop)
	waitGot(t, tab, <-sent)
}

// The node serving the page is lost (its connections cut, as a crash or a
// load balancer marking it down does): the library resumes on the other
// node from its last position, and every message arrives once, in order.
// Over each transport.
func TestLibraryResumesOnAnotherNode(t *testing.T) {
	for _, tc := range []struct {
		name           string
		refuse, buffer bool
	}{{"websocket", false, false}, {"sse", true, false}, {"poll", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			a, b := c.start("a"), c.start("b")
			p := newWebProxy(t, libPages, a, b)
			p.refuseUpgrades.Store(tc.refuse)
			p.bufferWhole.Store(tc.buffer)
			tab := newChromium(t)
			on := openLib(t, tab, p, "news", false)
			if !strings.HasPrefix(on, tc.name+"@") {
				t.Fatalf("connected over %s", on)
			}
			stop := make(chan struct{})
			sent := publishSteadily(c, "news", stop)
			time.Sleep(time.Second)
			serving := map[string]*testNode{"a": a, "b": b}[on[strings.Index(on, "@")+1:]]
			p.kill(serving)
			other := map[*testNode]string{a: "b", b: "a"}[serving]
			waitEval(t, tab, `connected()`, tc.name+"@"+other)
			time.Sleep(time.Second)
			close(stop)
			waitGot(t, tab, <-sent)
		})
	}
}

// Eight tabs with shared: true hold one connection between them, every
// tab gets every message, and when the leading tab closes another takes
// over with nothing lost.
func TestLibrarySharedTabs(t *testing.T) {
	c := newCluster(t)
	a := c.start("a")
	p := newWebProxy(t, libPages, a)
	browser := newChromium(t)
	var tabs []context.Context
	var closers []context.CancelFunc
	for range 8 {
		tab, cancel := chromedp.NewContext(browser)
		t.Cleanup(cancel)
		if err := chromedp.Do(tab); err != nil {
			t.Fatal(err)
		}
		tabs, closers = append(tabs, tab), append(closers, cancel)
	}
	for _, tab := range tabs {
		openLib(t, tab, p, "news", true)
	}
	clients := func() int {
		var list struct{ Clients []struct{ ID string } }
		getJSON(t, a.base+"/api/clients", &list)
		return len(list.Clients)
	}
	if n := clients(); n != 1 {
		t.Fatalf("%d connections for eight tabs, want 1", n)
	}
	stop := make(chan struct{})
	sent := publishSteadily(c, "news", stop)
	time.Sleep(time.Second)
	var leader int = -1
	for i, tab := range tabs {
		if evalOK[bool](t, tab, `!!(push.tabs && push.tabs.leading)`) {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no tab leads")
	}
	closers[leader]() // closes the tab, as a user does
	rest := append(append([]context.Context{}, tabs[:leader]...), tabs[leader+1:]...)
	checkFor(t, 10*time.Second, func() error {
		for _, tab := range rest {
			if ok, _ := evalJSON[bool](tab, `!!(push.tabs && push.tabs.leading)`); ok {
				return nil
			}
		}
		return fmt.Errorf("no tab took over")
	})
	time.Sleep(time.Second)
	close(stop)
	want := <-sent
	for _, tab := range rest {
		waitGot(t, tab, want)
	}
	checkFor(t, 10*time.Second, func() error {
		if n := clients(); n != 1 {
			return fmt.Errorf("%d connections for seven tabs, want 1", n)
		}
		return nil
	})
}

// The ES module imports from the node, and the node revalidates it by its
// ETag.
func TestLibraryModuleAndCaching(t *testing.T) {
	c := newCluster(t)
	n := c.start("a")
	p := newWebProxy(t, libPages, n)
	tab := newChromium(t)
	run(t, tab, chromedp.Navigate(p.srv.URL+"/test/module.html"))
	waitEval(t, tab, `connected()`, "websocket")
	c.xadd("mod", "data", "from a module")
	waitEval(t, tab, `got.join()`, "from a module")
	resp, err := http.Get(n.base + "/push.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	req, _ := http.NewRequest("GET", n.base+"/push.js", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Fatalf("ETag %q revalidated with %d", etag, resp.StatusCode)
	}
}

func xaddArgs(stream, data string) *redis.XAddArgs {
	return &redis.XAddArgs{Stream: stream, Values: []any{"data", data}}
}
