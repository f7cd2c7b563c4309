//go:build unix

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserWait bounds each wait for the page: the CI machine is small and
// Chromium shares it with Redis and two nodes.
const browserWait = 20 * time.Second

// demoMsg is an entry of window.demo.sseMessages or window.demo.wsMessages,
// or a .msg line of a log.
type demoMsg struct {
	ID    string `json:"id"`
	Event string `json:"event"`
	Data  string `json:"data"`
}

// The demo page at / of a node, in a real Chromium, receives what a raw XADD
// publishes over both EventSource and WebSocket, shows which node serves each
// connection, resumes after a disconnect without loss or duplicates, and
// publishes to everyone, including a page served by the other node.
func TestDemoPageInChromium(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("node-a"), c.start("node-b")
	tabA := newChromium(t)
	run(t, tabA, chromedp.Navigate(a.base+"/"))
	waitConnected(t, tabA, "node-a")
	// The page shows a redis-cli line that works with this node's prefix.
	waitEval(t, tabA, `document.querySelector('#cli-xadd').textContent.includes(`+jsString("XADD "+c.prefix+"demo")+`) ? "ok" : "no"`, "ok")

	first := "hello from XADD <b>x</b>"
	id1 := c.xadd("demo", "event", "myEve", "data", first)
	want := []demoMsg{{ID: id1, Event: "myEve", Data: first}}
	waitMessages(t, tabA, want)
	if n := evalOK[int](t, tabA, `document.querySelectorAll('#sse-log b, #ws-log b').length`); n != 0 {
		t.Errorf("the logs hold %d <b> elements: the payload was parsed as HTML", n)
	}

	run(t, tabA, chromedp.Click(chromedp.CSS("#sse-disconnect")), chromedp.Click(chromedp.CSS("#ws-disconnect")))
	waitText(t, tabA, "#sse-state", "closed")
	waitText(t, tabA, "#ws-state", "closed")
	missed := "sent while both were disconnected"
	id2 := c.xadd("demo", "event", "myEve", "data", missed)
	run(t, tabA, chromedp.Click(chromedp.CSS("#sse-reconnect")), chromedp.Click(chromedp.CSS("#ws-reconnect")))
	waitConnected(t, tabA, "node-a")
	want = append(want, demoMsg{ID: id2, Event: "myEve", Data: missed})
	waitMessages(t, tabA, want)

	tabB := newTab(t, tabA)
	run(t, tabB, chromedp.Navigate(b.base+"/"))
	waitConnected(t, tabB, "node-b")

	fromPage := "published from the page on node-a"
	id3 := publishFromPage(t, tabA, fromPage)
	published := demoMsg{ID: id3, Event: "myEve", Data: fromPage}
	waitMessages(t, tabA, append(want, published))
	waitMessages(t, tabB, []demoMsg{published})

	screenshot(t, tabA)
}

// publishFromPage publishes data to everyone with the page's form and
// returns the id that #publish-result shows.
func publishFromPage(t *testing.T, ctx context.Context, data string) string {
	t.Helper()
	run(t, ctx,
		chromedp.SetValue(chromedp.CSS("#data"), data),
		chromedp.SetValue(chromedp.CSS("#target"), "all"),
		chromedp.Click(chromedp.CSS("#publish")))
	var res struct{ Status, ID, Text string }
	checkFor(t, browserWait, func() error {
		var err error
		res, err = evalJSON[struct{ Status, ID, Text string }](ctx, `(r => ({
			status: r.dataset.status || '', id: r.dataset.id || '', text: r.textContent,
		}))(document.querySelector('#publish-result'))`)
		if err == nil && (res.Status == "" || res.Status == "pending") {
			err = fmt.Errorf("#publish-result is %q", res.Text)
		}
		return err
	})
	if res.Status != "ok" || res.ID == "" || !strings.Contains(res.Text, res.ID) {
		t.Fatalf("#publish-result: status %q, id %q, text %q", res.Status, res.ID, res.Text)
	}
	return res.ID
}

// newChromium starts a headless Chromium with one tab, stopped when the test
// ends.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		path, err = exec.LookPath("chromium-browser")
	}
	if err != nil {
		t.Fatal("this test needs Chromium: found neither chromium nor chromium-browser in PATH (on Debian: apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser and ties it to ctx, so it has no timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("failed to start %s: %v", path, err)
	}
	return ctx
}

// newTab opens another tab in the browser of ctx, closed when the test ends.
func newTab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("failed to open a tab: %v", err)
	}
	return tab
}

func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// evalJSON evaluates js in the page and decodes its JSON value into a T.
func evalJSON[T any](ctx context.Context, js string) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js))
}

func evalOK[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := evalJSON[T](ctx, js)
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitText waits until the element sel shows want; an empty want waits for
// any text.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	waitEval(t, ctx, fmt.Sprintf(`document.querySelector(%s).textContent`, jsString(sel)), want)
}

// waitEval waits until js evaluates to the string want, or to any non-empty
// string when want is empty.
func waitEval(t *testing.T, ctx context.Context, js, want string) string {
	t.Helper()
	var got string
	checkFor(t, browserWait, func() error {
		var err error
		got, err = evalJSON[string](ctx, js)
		if err == nil && (got == want || want == "" && got != "") {
			return nil
		}
		return fmt.Errorf("%s is %q (want %q): %v", js, got, want, err)
	})
	return got
}

// waitConnected waits until both connections of the page are open, say which
// node serves them and have a position: the WebSocket welcome comes before
// the subscription, the subscribed frame sets #ws-last.
func waitConnected(t *testing.T, ctx context.Context, node string) {
	t.Helper()
	for _, p := range []string{"sse", "ws"} {
		waitText(t, ctx, "#"+p+"-state", "open")
		waitText(t, ctx, "#"+p+"-node", node)
		waitText(t, ctx, "#"+p+"-client", "")
		waitText(t, ctx, "#"+p+"-last", "")
	}
}

// waitMessages waits until each transport of the page has received exactly
// want, in order, both in window.demo and as .msg lines in its log.
func waitMessages(t *testing.T, ctx context.Context, want []demoMsg) {
	t.Helper()
	for _, p := range []string{"sse", "ws"} {
		sources := [][2]string{
			{"window.demo." + p + "Messages", `window.demo.` + p + `Messages`},
			{"#" + p + "-log", `[...document.querySelectorAll('#` + p + `-log .msg')].map(li => ({
				id: li.dataset.id, event: li.dataset.event, data: li.querySelector('.d').textContent}))`},
		}
		for _, src := range sources {
			name, js := src[0], src[1]
			checkFor(t, browserWait, func() error {
				got, err := evalJSON[[]demoMsg](ctx, js)
				switch {
				case err != nil:
					return err
				case len(got) < len(want):
					return fmt.Errorf("%s has %d messages, want %d: %+v", name, len(got), len(want), got)
				case !slices.Equal(got, want):
					t.Fatalf("%s:\ngot  %+v\nwant %+v", name, got, want)
				}
				return nil
			})
		}
	}
}

// screenshot saves the whole page under t.TempDir, and to $DEMO_SCREENSHOT
// when set.
func screenshot(t *testing.T, ctx context.Context) {
	t.Helper()
	png, err := evalScreenshot(ctx)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	paths := []string{filepath.Join(t.TempDir(), "demo.png")}
	if p := strings.TrimSpace(os.Getenv("DEMO_SCREENSHOT")); p != "" {
		paths = append(paths, p)
	}
	for _, p := range paths {
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func evalScreenshot(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	return chromedp.Run(ctx, chromedp.FullScreenshot(100))
}

// The status page, in a real Chromium, shows a member appear when it joins
// and leave the members table when it is killed.
func TestStatusPageInChromium(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.startMember("a", nil)
	b := c.startMember("b", []string{a.Cluster().GossipAddr()})
	tab := newChromium(t)
	run(t, tab, chromedp.Navigate(a.base+"/status"))
	rows := `Array.from(document.querySelectorAll('#nodes tr')).map(r => r.dataset.node + ':' + r.dataset.state).join(',')`
	waitEval(t, tab, rows, "a:alive,b:alive")
	gone := `document.querySelector('#gone-section').hidden ? "hidden" : "shown"`
	waitEval(t, tab, gone, "hidden") // nobody is gone: no empty heading
	s := openSSE(t, sseURL(b, "shown"), "")
	s.waitWelcome()
	waitEval(t, tab, `document.querySelector('#nodes tr[data-node="b"] td:nth-child(5)').textContent`, "1")

	p := c.startProcess("p", []string{a.Cluster().GossipAddr()})
	waitEval(t, tab, rows, "a:alive,b:alive,p:alive")
	screenshot(t, tab)
	p.signal(syscall.SIGKILL)
	p.cmd.Wait()
	waitEval(t, tab, rows, "a:alive,b:alive")
	waitEval(t, tab, `document.querySelector('#gone li[data-node="p"]').textContent`, "p: dead")
	waitEval(t, tab, gone, "shown")
}
