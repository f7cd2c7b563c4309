package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// sseStream is an EventSource over one HTTP/1.1 connection, parsed exactly
// as a browser does.
type sseStream struct {
	conn   net.Conn
	body   io.Closer
	parser *protocol.SSEParser
	stop   func() bool
}

var _ stream = (*sseStream)(nil)

func (t *target) dialSSE(ctx context.Context, i int, channels []string, since string, deadline time.Time) (_ stream, err error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	base := t.pick()
	conn, err := t.src.dialer(i).DialContext(dctx, "tcp", base.Host)
	if err != nil {
		return nil, err
	}
	s := &sseStream{conn: conn}
	s.stop = context.AfterFunc(ctx, s.close)
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	conn.SetDeadline(deadline)
	if _, err := io.WriteString(conn, sseRequest(base, channels, since)); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("bench: SSE answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	conn.SetWriteDeadline(time.Time{})
	s.body = resp.Body
	s.parser = protocol.NewSSEParser(resp.Body)
	return s, nil
}

// sseRequest is the request a browser's EventSource sends.
func sseRequest(base *url.URL, channels []string, since string) string {
	q := url.Values{"channel": channels}
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s/sse?%s%s HTTP/1.1\r\nHost: %s\r\n", strings.TrimSuffix(base.Path, "/"), q.Encode(), tokenQuery(), base.Host)
	b.WriteString("Accept: text/event-stream\r\nCache-Control: no-cache\r\n")
	if since != "" {
		fmt.Fprintf(&b, "Last-Event-ID: %s\r\n", since)
	}
	b.WriteString("\r\n")
	return b.String()
}

func (s *sseStream) next() (event, error) {
	ev, err := s.parser.NextRaw()
	if err != nil {
		return event{}, err
	}
	switch ev.Event {
	case protocol.EventWelcome:
		return event{kind: evReady, id: ev.ID, data: string(ev.Data)}, nil
	case protocol.EventGap:
		return event{kind: evGap, id: ev.ID, data: string(ev.Data)}, nil
	case protocol.EventError:
		return event{kind: evError, id: ev.ID, data: string(ev.Data)}, nil
	}
	return event{kind: evMessage, id: ev.ID, payload: ev.Data}, nil
}

func (s *sseStream) setDeadline(t time.Time) { s.conn.SetReadDeadline(t) }

func (s *sseStream) close() {
	if s.stop != nil {
		s.stop()
	}
	s.conn.Close()
}
