package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// wsReadLimit is the largest frame a WebSocket client accepts.
const wsReadLimit = 16 << 20

// wsStream is one WebSocket subscribed to one channel at connect.
type wsStream struct {
	conn     *websocket.Conn
	ctx      context.Context
	deadline time.Time
	unhook   func() bool // removes the close-when-ctx-ends callback
	buf      bytes.Buffer
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
	unhook := context.AfterFunc(ctx, func() { conn.CloseNow() })
	return &wsStream{conn: conn, ctx: ctx, deadline: deadline, unhook: unhook}, nil
}

// next reads the next frame. Without a deadline it reads with a context
// that never ends (the stream is closed when its own ends): coder/websocket
// registers a callback on a read's context when it can end, and thousands
// of readers doing that per message, on one parent, were the tool's
// bottleneck rather than the server's writes.
func (s *wsStream) next() (event, error) {
	ctx := context.Background()
	if !s.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(s.ctx, s.deadline)
		defer cancel()
	}
	_, r, err := s.conn.Reader(ctx)
	if err == nil {
		s.buf.Reset()
		_, err = s.buf.ReadFrom(r)
	}
	if err != nil {
		if cerr := s.ctx.Err(); cerr != nil {
			return event{}, cerr
		}
		return event{}, err
	}
	b := s.buf.Bytes()
	if ev, ok := fastMessage(b); ok {
		return ev, nil
	}
	var f protocol.ServerFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return event{}, fmt.Errorf("bench: bad WebSocket frame: %w", err)
	}
	switch f.Type {
	case protocol.TypeSubscribed:
		return event{kind: evReady, id: f.Position}, nil
	case protocol.TypeMessage:
		var data []byte
		if f.Data != nil {
			data = []byte(*f.Data)
		}
		return event{kind: evMessage, id: f.ID, payload: data}, nil
	case protocol.TypeGap:
		return event{kind: evGap, id: f.Resume, data: f.Reason}, nil
	case protocol.TypeError:
		return event{kind: evError, data: f.Code + ": " + f.Message}, nil
	}
	return event{kind: evOther}, nil
}

func (s *wsStream) setDeadline(t time.Time) { s.deadline = t }

func (s *wsStream) close() {
	s.unhook()
	s.conn.CloseNow()
}

// fastMessage reads a message frame without a JSON decoder when it can: the
// node and the bare relay put "type" first, and the tool's payloads need no
// escapes. A decoder reads 64 KiB frames at a fraction of the rate a server
// writes them, and the clients, not the server, would be measured; for the
// same reason the payload is not copied out of b. Any other frame, or one
// with an escape in its id or data, is for the decoder.
func fastMessage(b []byte) (event, bool) {
	const head = `{"type":"message",`
	if !bytes.HasPrefix(b, []byte(head)) {
		return event{}, false
	}
	id, ok := fastField(b, `"id":"`)
	if !ok {
		return event{}, false
	}
	data, ok := fastField(b, `"data":"`)
	if !ok {
		return event{}, false
	}
	return event{kind: evMessage, id: string(id), payload: data}, true
}

// fastField returns the string value after key, if it has no escapes.
func fastField(b []byte, key string) ([]byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, false
	}
	v := b[i+len(key):]
	end := bytes.IndexByte(v, '"')
	if end < 0 || bytes.IndexByte(v[:end], '\\') >= 0 {
		return nil, false
	}
	return v[:end], true
}
