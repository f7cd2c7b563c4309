package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// sseConn is a subscription over an event stream: all its channels on one
// stream, resumed with Last-Event-ID.
type sseConn struct{}

func (sseConn) run(ctx context.Context, s *Subscription, emit func(context.Context, *protocol.ServerFrame) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	u, q, h, err := s.c.request(ctx, "/sse", true)
	if err != nil {
		return err
	}
	q["channel"] = s.channels
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header = h
	req.Header.Set("Accept", "text/event-stream")
	if since := s.since(); since != "" {
		req.Header.Set("Last-Event-ID", since)
	}
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return refused(resp)
	}
	stall := newStallTimer(s.c.cfg.StallTimeout, cancel)
	defer stall.stop()
	p := protocol.NewSSEParser(resp.Body)
	for {
		ev, err := p.Next()
		if err != nil {
			if ctx.Err() != nil && s.c.cfg.StallTimeout > 0 {
				return errStalled
			}
			return err // the stream ended: reconnect, as a browser does
		}
		stall.alive()
		f, err := s.sseFrame(ev)
		if err != nil {
			return err
		}
		for i := range f {
			if err := emit(ctx, &f[i]); err != nil {
				return err
			}
		}
	}
}

// sseFrame turns an event into the frames a WebSocket would carry. A
// message's channel is the one whose position its ID moved.
func (s *Subscription) sseFrame(ev protocol.SSEEvent) ([]protocol.ServerFrame, error) {
	switch ev.Event {
	case protocol.EventWelcome:
		var w protocol.Welcome
		if err := json.Unmarshal([]byte(ev.Data), &w); err != nil {
			return nil, fmt.Errorf("client: welcome: %w", err)
		}
		if ev.ID != "" {
			if pos, err := protocol.DecodeCursor(ev.ID, s.channels); err == nil {
				for i, id := range pos {
					s.started(s.channels[i], id.String())
				}
			}
		}
		return []protocol.ServerFrame{{Type: protocol.TypeWelcome, Client: w.Client, Session: w.Session, Node: w.Node}}, nil
	case protocol.EventGap:
		var g protocol.Gap
		if err := json.Unmarshal([]byte(ev.Data), &g); err != nil {
			return nil, fmt.Errorf("client: gap: %w", err)
		}
		pos, err := protocol.DecodeCursor(ev.ID, s.channels)
		var out []protocol.ServerFrame
		for _, ch := range g.Channels {
			f := protocol.ServerFrame{Type: protocol.TypeGap, Channel: ch, Reason: g.Reason, From: g.From, Resume: g.Resume}
			if i := s.index(ch); err == nil && i >= 0 {
				f.Resume = pos[i].String()
			}
			out = append(out, f)
		}
		return out, nil
	case protocol.EventDirect:
		var d struct{ ID, Event, Data string }
		if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
			return nil, fmt.Errorf("client: direct: %w", err)
		}
		return []protocol.ServerFrame{{Type: protocol.TypeDirect, ID: d.ID, Event: d.Event, Data: &d.Data}}, nil
	case protocol.EventError:
		var e protocol.ErrorDetail
		json.Unmarshal([]byte(ev.Data), &e)
		return []protocol.ServerFrame{{Type: protocol.TypeError, Code: e.Code, Message: e.Message}}, nil
	}
	pos, err := protocol.DecodeCursor(ev.ID, s.channels)
	if err != nil {
		return nil, fmt.Errorf("client: event id %q: %w", ev.ID, err)
	}
	for i, id := range pos {
		if s.pos == nil || s.pos[i].Less(id) {
			event := ev.Event
			if event == "message" {
				event = ""
			}
			data := ev.Data
			return []protocol.ServerFrame{{Type: protocol.TypeMessage, Channel: s.channels[i], ID: id.String(), Event: event, Data: &data}}, nil
		}
	}
	return nil, nil // nothing new: already delivered
}
