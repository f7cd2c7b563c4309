//go:build unix

package tests

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushcluster/pushcluster/pkg/events"
	"github.com/pushcluster/pushcluster/pkg/node"
)

// receiver is an application's webhook endpoint: it fails until a time,
// then takes every batch, checking each signature as the Standard
// Webhooks specification says, with its own HMAC (not the node's code).
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	key    []byte
	until  time.Time
	mu     sync.Mutex
	got    []map[string]string // every event received, repeats included
	bad    []string
	posts  int
	failed int
}

func newReceiver(t *testing.T, key []byte, failFor time.Duration) *receiver {
	r := &receiver{t: t, key: key, until: time.Now().Add(failFor)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	if time.Now().Before(r.until) {
		r.failed++
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	id, ts := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
	mac := hmac.New(sha256.New, r.key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	sec, _ := strconv.ParseInt(ts, 10, 64)
	if id == "" || !hmac.Equal([]byte(req.Header.Get("webhook-signature")), []byte(want)) || time.Since(time.Unix(sec, 0)) > time.Minute {
		r.bad = append(r.bad, fmt.Sprintf("id %q ts %q signature %q", id, ts, req.Header.Get("webhook-signature")))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var b struct{ Events []map[string]string }
	if err := json.Unmarshal(body, &b); err != nil {
		r.bad = append(r.bad, "body: "+err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.got = append(r.got, b.Events...)
}

func webhookSecret(t *testing.T) (string, []byte) {
	key := make([]byte, 32)
	rand.Read(key)
	return "whsec_" + base64.StdEncoding.EncodeToString(key), key
}

// A receiver that fails for 30 s and then recovers gets every event at
// least once, signed, in order per channel, though the node delivering
// them was SIGKILLed meanwhile: another node takes over the delivery from
// the stream's consumer group and loses nothing.
func TestWebhooksAtLeastOnceInOrder(t *testing.T) {
	c := newCluster(t)
	secret, key := webhookSecret(t)
	rcv := newReceiver(t, key, 30*time.Second)
	stream := eventsStream(c)
	p := c.startProcess("p", nil, "-events-stream", stream, "-vacate-delay", "300ms",
		"-webhook-url", rcv.srv.URL, "-webhook-secret", secret)
	// p delivers: it started first, so it holds the lock. Give it work.
	var streams []*sseStream
	for i := range 6 {
		s := openSSE(t, sseURL(p.testNode, fmt.Sprintf("w%d", i%2)), "")
		s.waitWelcome()
		streams = append(streams, s)
	}
	b := c.start("b", withEvents(c), func(cfg *node.Config) {
		cfg.Webhooks = events.WebhookConfig{URL: rcv.srv.URL, Secret: secret, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	})
	for i := range 6 {
		s := openSSE(t, sseURL(b, fmt.Sprintf("w%d", i%2)), "")
		s.waitWelcome()
		streams = append(streams, s)
	}
	checkFor(t, 20*time.Second, func() error { // p is trying, and failing
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		if rcv.failed == 0 {
			return fmt.Errorf("no delivery tried yet")
		}
		return nil
	})
	p.signal(syscall.SIGKILL) // mid-delivery
	p.cmd.Wait()
	for _, s := range streams[6:8] {
		s.close()
	}
	// Once the receiver recovers, b delivers everything: what p had read
	// and not delivered, p's clients reported lost, b's own.
	var want []map[string]string
	checkFor(t, 90*time.Second, func() error {
		want = readEvents(t, c.rdb, stream)
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		got := map[string]bool{}
		for _, e := range rcv.got {
			got[e["event_id"]] = true
		}
		for _, e := range want {
			if !got[e["event_id"]] {
				return fmt.Errorf("%d of %d events received; missing %v", len(got), len(want), e)
			}
		}
		if countEvents(want, "client.disconnected", func(e map[string]string) bool { return e["reason"] == events.ReasonNodeLost }) != 6 {
			return fmt.Errorf("p's clients not yet reported lost")
		}
		return nil
	})
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Fatalf("bad deliveries: %v", rcv.bad)
	}
	// In order per channel: the first arrival of each event follows the
	// stream's order within its channel.
	pos := map[string]int{}
	for i, e := range want {
		pos[e["event_id"]] = i
	}
	last := map[string]int{}
	seen := map[string]bool{}
	for _, e := range rcv.got {
		id := e["event_id"]
		if seen[id] {
			continue
		}
		seen[id] = true
		ch := e["channel"]
		if ch == "" {
			continue
		}
		if prev, ok := last[ch]; ok && pos[id] < prev {
			t.Fatalf("channel %s: %s arrived after a later event", ch, id)
		}
		last[ch] = pos[id]
	}
	t.Logf("%d events, %d received (repeats included), %d POSTs of which %d refused while the receiver failed",
		len(want), len(rcv.got), rcv.posts, rcv.failed)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatal(secret)
	}
}
