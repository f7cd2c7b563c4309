package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// pollStream is a long-polling client on one keep-alive HTTP/1.1
// connection: one poll after another, each from the last answer's since
// with its key, the frames of each answer handed out one at a time.
type pollStream struct {
	conn     net.Conn
	br       *bufio.Reader
	base     *url.URL
	channels []string
	since    string
	key      string
	queue    []event
	stop     func() bool
}

var _ stream = (*pollStream)(nil)

// pollWait is how long each poll is held: what a browser library uses.
const pollWait = protocol.DefaultPollWait

func (t *target) dialPoll(ctx context.Context, i int, channels []string, since string, deadline time.Time) (_ stream, err error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	base := t.pick()
	conn, err := t.src.dialer(i).DialContext(dctx, "tcp", base.Host)
	if err != nil {
		return nil, err
	}
	s := &pollStream{conn: conn, br: bufio.NewReaderSize(conn, 4096), base: base, channels: channels, since: since}
	s.stop = context.AfterFunc(ctx, s.close)
	conn.SetDeadline(deadline)
	return s, nil
}

func (s *pollStream) next() (event, error) {
	for len(s.queue) == 0 {
		if err := s.poll(); err != nil {
			return event{}, err
		}
	}
	ev := s.queue[0]
	s.queue = s.queue[1:]
	return ev, nil
}

// poll sends one poll and queues what it answers.
func (s *pollStream) poll() error {
	q := url.Values{"channel": s.channels}
	if s.since != "" {
		q.Set("since", s.since)
	}
	if s.key != "" {
		q.Set("poll", s.key)
	}
	q.Set("wait", pollWait.String())
	req := fmt.Sprintf("GET %s/poll?%s%s HTTP/1.1\r\nHost: %s\r\n\r\n", strings.TrimSuffix(s.base.Path, "/"), q.Encode(), tokenQuery(), s.base.Host)
	if _, err := io.WriteString(s.conn, req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(s.br, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("bench: poll answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var a protocol.PollAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body) // the newline after the JSON: the connection is reused
	for i, f := range a.Messages {
		// A message's position is its entry ID on one channel; on several,
		// the answer's since is the position after its last message.
		id := f.ID
		if len(s.channels) > 1 {
			id = ""
			if i == len(a.Messages)-1 {
				id = a.Since
			}
		}
		switch f.Type {
		case protocol.TypeWelcome:
			s.queue = append(s.queue, event{kind: evReady, id: a.Since})
		case protocol.TypeMessage:
			var data []byte
			if f.Data != nil {
				data = []byte(*f.Data)
			}
			s.queue = append(s.queue, event{kind: evMessage, id: id, payload: data})
		case protocol.TypeGap:
			b, _ := json.Marshal(f)
			s.queue = append(s.queue, event{kind: evGap, id: f.Resume, data: string(b)})
		case protocol.TypeError:
			b, _ := json.Marshal(f)
			s.queue = append(s.queue, event{kind: evError, data: string(b)})
		}
	}
	s.since, s.key = a.Since, a.Poll
	if s.key == "" && len(s.queue) == 0 {
		return fmt.Errorf("bench: the node ended the poll session")
	}
	return nil
}

func (s *pollStream) setDeadline(t time.Time) { s.conn.SetDeadline(t) }

func (s *pollStream) close() {
	if s.stop != nil {
		s.stop()
	}
	s.conn.Close()
}
