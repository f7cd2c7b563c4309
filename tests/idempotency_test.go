//go:build unix

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushcluster/pushcluster/pkg/client"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// One idempotency key sent to two nodes at once stores one entry: both
// answer its ID, one of them as a duplicate, and a subscriber gets the
// message once. The same key on another channel is another publish.
func TestIdempotentPublishAcrossNodes(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("a"), c.start("b")
	s := openSSE(t, sseURL(a, "orders"), "")
	s.waitWelcome()
	var wg sync.WaitGroup
	answers := make([]protocol.PublishAnswer, 2)
	for i, n := range []*testNode{a, b} {
		wg.Go(func() {
			status, body := postJSON(t, n.base+"/api/publish", map[string]any{"channel": "orders", "data": "order 17", "idempotency_key": "order-17"})
			if status != http.StatusOK || json.Unmarshal(body, &answers[i]) != nil {
				t.Errorf("publish to %s: %d %s", n.Name(), status, body)
			}
		})
	}
	wg.Wait()
	if answers[0].ID == "" || answers[0].ID != answers[1].ID || answers[0].Duplicate == answers[1].Duplicate {
		t.Fatalf("answers %+v, want one id, one of them a duplicate", answers)
	}
	other := publish(t, b, map[string]any{"channel": "orders-eu", "data": "order 17", "idempotency_key": "order-17"})
	if other == "" {
		t.Fatal("the key on another channel was not published")
	}
	c.xadd("orders", "data", "marker")
	equalStrings(t, "delivered", s.waitData(2), []string{"order 17", "marker"})
	s.waitQuiet()
	if n := c.rdb.XLen(context.Background(), c.prefix+"orders").Val(); n != 2 {
		t.Fatalf("%d entries, want the order and the marker", n)
	}
}

// A publisher whose node did the publish but died before answering (the
// answer never arrives) retries on another node with the same key: it
// gets the first publish's ID, nothing is stored twice, and subscribers
// get the message once. pkg/client retries by itself with a key.
func TestIdempotentPublishRetriedAfterALostAnswer(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("a"), c.start("b")
	dying := newWebProxy(t, nil, a)
	dying.dropAnswers.Store(true)
	ws := dialWS(t, b, "?channel=orders")
	ws.waitType("subscribed", 1)
	pc, err := client.New(client.Config{URLs: []string{dying.srv.URL, b.base}, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Without a key the lost answer is an error: whether it was stored is
	// unknown to the publisher.
	pc0, _ := client.New(client.Config{URLs: []string{dying.srv.URL}})
	if _, err := pc0.Publish(context.Background(), "orders", "unkeyed"); err == nil {
		t.Fatal("a publish whose answer was lost succeeded")
	}
	id, err := pc.Publish(context.Background(), "orders", "order 18", client.WithIdempotencyKey("order-18"))
	if err != nil || id == "" {
		t.Fatalf("retried publish: %q %v", id, err)
	}
	entries := c.rdb.XRange(context.Background(), c.prefix+"orders", "-", "+").Val()
	if len(entries) != 2 || entries[1].ID != id || entries[1].Values["data"] != "order 18" {
		t.Fatalf("entries %v, want the unkeyed one and order 18 once, as %s", entries, id)
	}
	c.xadd("orders", "data", "marker")
	equalStrings(t, "delivered", ws.waitData(3), []string{"unkeyed", "order 18", "marker"})
}

// The Idempotency-Key header is the body's key; a bad key, a header that
// contradicts the body, and a key on a message to one client are refused.
// Over the WebSocket a repeated key is acknowledged as a duplicate.
func TestIdempotencyKeyForms(t *testing.T) {
	c := newCluster(t)
	n := c.start("a")
	post := func(body string, header string) (int, protocol.PublishAnswer, []byte) {
		req, _ := http.NewRequest("POST", n.base+"/api/publish", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if header != "" {
			req.Header.Set("Idempotency-Key", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := readAll(t, resp)
		var a protocol.PublishAnswer
		json.Unmarshal(b, &a)
		return resp.StatusCode, a, b
	}
	st, first, _ := post(`{"channel":"h","data":"x"}`, "hk-1")
	st2, again, _ := post(`{"channel":"h","data":"x","idempotency_key":"hk-1"}`, "")
	if st != 200 || st2 != 200 || first.Duplicate || !again.Duplicate || again.ID != first.ID {
		t.Fatalf("header then body: %d %+v, %d %+v", st, first, st2, again)
	}
	for _, tc := range []struct{ body, header string }{
		{`{"channel":"h","data":"x","idempotency_key":"a"}`, "b"},
		{`{"channel":"h","data":"x","idempotency_key":"` + strings.Repeat("k", 201) + `"}`, ""},
		{`{"channel":"h","data":"x","idempotency_key":"tab\there"}`, ""},
		{`{"client":"someone","data":"x","idempotency_key":"k"}`, ""},
		{`{"channel":"a}b","data":"x","idempotency_key":"k"}`, ""},
	} {
		st, _, body := post(tc.body, tc.header)
		want := protocol.CodeInvalidKey
		if strings.Contains(tc.body, "a}b") {
			want = protocol.CodeInvalidChannel
		}
		checkError(t, "publish "+tc.body, st, body, 400, want)
	}
	w := dialWS(t, n, "")
	for ref := 1; ref <= 2; ref++ {
		w.send(map[string]any{"type": "publish", "channel": "w", "data": "x", "idempotency_key": "wk", "ref": ref})
	}
	acks := w.waitType("ack", 2)
	if acks[0]["id"] != acks[1]["id"] || acks[0]["duplicate"] != nil || acks[1]["duplicate"] != true {
		t.Fatalf("acks %v", acks)
	}
	w.send(map[string]any{"type": "publish", "channel": "w", "data": "x", "idempotency_key": "bad\x01", "ref": 3})
	if e := w.waitType("error", 1); e[0]["code"] != protocol.CodeInvalidKey {
		t.Fatalf("error %v", e)
	}
}

// Publishes with keys while the node they go to is SIGKILLed: each is
// retried (pkg/client, on the other node) until answered, and each key
// is stored once and delivered once, whether the killed node had stored
// it or not.
func TestIdempotentPublishAcrossANodeKill(t *testing.T) {
	c := newCluster(t)
	p := c.startProcess("p", nil)
	b := c.start("b")
	ws := dialWS(t, b, "?channel=keyed")
	ws.waitType("subscribed", 1)
	pc, err := client.New(client.Config{URLs: []string{p.base, b.base}, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if _, err := pc.Publish(context.Background(), "keyed", fmt.Sprintf("m%d", i), client.WithIdempotencyKey(fmt.Sprintf("k%d", i))); err != nil {
				done <- fmt.Errorf("publish %d: %w", i, err)
				return
			}
			if i == n/4 {
				p.signal(syscall.SIGKILL) // with publishes in flight to it
			}
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	entries := c.rdb.XRange(context.Background(), c.prefix+"keyed", "-", "+").Val()
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("m%d", i))
	}
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprint(e.Values["data"]))
	}
	equalStrings(t, "stored", got, want)
	equalStrings(t, "delivered", ws.waitData(n), want)
}
