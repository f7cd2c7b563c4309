package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// wsConn is a subscription over WebSocket: one subscribe frame per
// channel, each from its own position.
type wsConn struct{}

func (wsConn) run(ctx context.Context, s *Subscription, emit func(context.Context, *protocol.ServerFrame) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	u, q, h, err := s.c.request(ctx, "/ws", true)
	if err != nil {
		return err
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.RawQuery = q.Encode()
	ws, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: s.c.hc, HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return refused(resp)
		}
		return err
	}
	defer ws.CloseNow()
	ws.SetReadLimit(16 << 20)
	stall := newStallTimer(s.c.cfg.StallTimeout, cancel)
	defer stall.stop()
	var wmu sync.Mutex
	send := func(f protocol.ClientFrame) error {
		b, _ := json.Marshal(f)
		wmu.Lock()
		defer wmu.Unlock()
		return ws.Write(ctx, websocket.MessageText, b)
	}
	for i, ch := range s.channels {
		f := protocol.ClientFrame{Type: protocol.TypeSubscribe, Channel: ch}
		if s.pos != nil && !s.pos[i].IsZero() {
			f.Since = s.pos[i].String()
		}
		if err := send(f); err != nil {
			return err
		}
	}
	// The node pings and a browser answers; this client also asks, so that
	// a connection that went quiet is found out within the stall timeout.
	var pinger sync.WaitGroup
	defer pinger.Wait()
	defer cancel()
	pinger.Go(func() {
		t := time.NewTicker(s.c.cfg.StallTimeout / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if send(protocol.ClientFrame{Type: protocol.TypePing}) != nil {
					return
				}
			}
		}
	})
	for {
		typ, b, err := ws.Read(ctx)
		if err != nil {
			return wsClosed(err)
		}
		stall.alive()
		if typ != websocket.MessageText {
			continue
		}
		var f protocol.ServerFrame
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("client: a frame that is not JSON: %w", err)
		}
		switch f.Type {
		case protocol.TypeSubscribed:
			s.started(f.Channel, f.Position)
			continue
		case protocol.TypeError:
			// An error about one channel's subscribe ends the subscription:
			// the node will not serve it.
			if f.Channel != "" || f.Code == protocol.CodeForbidden || f.Code == protocol.CodeInvalidChannel {
				return permanent{&Error{Code: f.Code, Message: f.Message}}
			}
		}
		if err := emit(ctx, &f); err != nil {
			return err
		}
	}
}

// wsClosed turns how a WebSocket ended into an error, permanent when the
// node asked the client not to come back.
func wsClosed(err error) error {
	switch websocket.CloseStatus(err) {
	case protocol.CloseDisconnected:
		return permanent{&Error{Code: protocol.CodeDisconnected, Message: "disconnected by the server"}}
	case protocol.CloseTokenExpired:
		return &Error{Status: http.StatusUnauthorized, Code: protocol.CodeTokenExpired, Message: "the token expired"}
	}
	return err
}

// request is the URL, query and header of a connection to the next node:
// its credential (a fresh ticket only when tickets is set), and the
// session every connection of the Client keeps.
func (c *Client) request(ctx context.Context, path string, tickets bool) (*url.URL, url.Values, http.Header, error) {
	return c.requestTo(ctx, c.nextURL(), path, tickets)
}

// requestTo is request to node.
func (c *Client) requestTo(ctx context.Context, node *url.URL, path string, tickets bool) (*url.URL, url.Values, http.Header, error) {
	u := *node
	u.Path += path
	q, h := url.Values{}, http.Header{}
	tq := q
	if !tickets {
		tq = nil
	}
	if err := c.authorize(ctx, h, tq); err != nil {
		return nil, nil, nil, err
	}
	if sess := c.Session(); sess != "" {
		q.Set("session", sess)
	}
	return &u, q, h, nil
}

var errStalled = errors.New("client: the connection delivered nothing for the stall timeout")
