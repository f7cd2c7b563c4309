package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// wsReadLimit is the largest frame a WebSocket client accepts.
const wsReadLimit = 16 << 20

// wsFrame is every server frame field the tool reads.
type wsFrame struct {
	Type     string `json:"type"`
	Channel  string `json:"channel"`
	ID       string `json:"id"`
	Data     string `json:"data"`
	Position string `json:"position"`
	Resume   string `json:"resume"`
	Reason   string `json:"reason"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

// wsStream is one WebSocket subscribed to one channel at connect.
type wsStream struct {
	conn     *websocket.Conn
	ctx      context.Context
	deadline time.Time
}

var _ stream = (*wsStream)(nil)

// dialWS subscribes at connect; since applies only to a single channel, as
// the node requires.
func (t *target) dialWS(ctx context.Context, i int, channels []string, since string, deadline time.Time) (stream, error) {
	u := *t.pick()
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path = strings.TrimSuffix(u.Path, "/") + "/ws"
	q := url.Values{"channel": channels}
	if since != "" && len(channels) == 1 {
		q.Set("since", since)
	}
	u.RawQuery = q.Encode() + tokenQuery()
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{HTTPClient: t.src.httpClient(i)})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(wsReadLimit)
	return &wsStream{conn: conn, ctx: ctx, deadline: deadline}, nil
}

func (s *wsStream) next() (event, error) {
	ctx := s.ctx
	if !s.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, s.deadline)
		defer cancel()
	}
	_, b, err := s.conn.Read(ctx)
	if err != nil {
		return event{}, err
	}
	var f wsFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return event{}, fmt.Errorf("bench: bad WebSocket frame: %w", err)
	}
	switch f.Type {
	case "subscribed":
		return event{kind: evReady, id: f.Position}, nil
	case "message":
		return event{kind: evMessage, id: f.ID, data: f.Data}, nil
	case "gap":
		return event{kind: evGap, id: f.Resume, data: f.Reason}, nil
	case "error":
		return event{kind: evError, data: f.Code + ": " + f.Message}, nil
	}
	return event{kind: evOther}, nil
}

func (s *wsStream) setDeadline(t time.Time) { s.deadline = t }

func (s *wsStream) close() { s.conn.CloseNow() }
