//go:build unix

package tests

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// roamer is a client that keeps one subscription to one channel across
// every close, reconnecting to the node pick names (as a client behind a
// load balancer does) and resuming from its last ID, the way
// docs/PROTOCOL.md says: Last-Event-ID for SSE, since for WebSocket.
type roamer struct {
	channel string
	ws      bool
	pick    func() *testNode

	mu      sync.Mutex
	data    []string
	gaps    int
	last    string
	served  []string    // node of each connection, from its welcome
	ended   []time.Time // when the server ended a connection
	current string      // node of the open connection
	closes  []int       // WebSocket close codes
}

func startRoamer(ctx context.Context, wg *sync.WaitGroup, channel string, ws bool, pick func() *testNode) *roamer {
	r := &roamer{channel: channel, ws: ws, pick: pick}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			n := r.pick()
			var err error
			if r.ws {
				err = r.runWS(ctx, n)
			} else {
				err = r.runSSE(ctx, n)
			}
			r.mu.Lock()
			r.current = ""
			if ctx.Err() == nil && err != nil {
				r.ended = append(r.ended, time.Now())
			}
			r.mu.Unlock()
			if ctx.Err() == nil {
				time.Sleep(20 * time.Millisecond) // a browser waits its retry time
			}
		}
	}()
	return r
}

func (r *roamer) runSSE(ctx context.Context, n *testNode) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sseURL(n, r.channel), nil)
	r.mu.Lock()
	if r.last != "" {
		req.Header.Set("Last-Event-ID", r.last)
	}
	r.mu.Unlock()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	p := protocol.NewSSEParser(resp.Body)
	for {
		ev, err := p.Next()
		if err != nil {
			return err
		}
		r.mu.Lock()
		switch ev.Event {
		case "push.welcome":
			var w struct{ Node string }
			json.Unmarshal([]byte(ev.Data), &w)
			r.served = append(r.served, w.Node)
			r.current = w.Node
		case "push.gap":
			r.gaps++
		case "message":
			r.data = append(r.data, ev.Data)
		}
		if id := p.LastEventID(); id != "" {
			r.last = id
		}
		r.mu.Unlock()
	}
}

func (r *roamer) runWS(ctx context.Context, n *testNode) error {
	q := url.Values{"channel": {r.channel}}
	r.mu.Lock()
	if r.last != "" {
		q.Set("since", r.last)
	}
	r.mu.Unlock()
	u := strings.Replace(n.base, "http://", "ws://", 1) + "/ws?" + q.Encode()
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 22)
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			r.mu.Lock()
			r.closes = append(r.closes, int(websocket.CloseStatus(err)))
			r.mu.Unlock()
			return err
		}
		var f struct{ Type, Node, Data, ID string }
		json.Unmarshal(b, &f)
		r.mu.Lock()
		switch f.Type {
		case "welcome":
			r.served = append(r.served, f.Node)
			r.current = f.Node
		case "gap":
			r.gaps++
		case "message":
			r.data = append(r.data, f.Data)
			r.last = f.ID
		}
		r.mu.Unlock()
	}
}

func (r *roamer) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.data...)
}

func (r *roamer) on() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current
}

// roundRobin picks nodes in turn, as a load balancer does.
func roundRobin(nodes ...*testNode) func() *testNode {
	var mu sync.Mutex
	i := 0
	return func() *testNode {
		mu.Lock()
		defer mu.Unlock()
		i++
		return nodes[i%len(nodes)]
	}
}
