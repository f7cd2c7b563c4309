package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// pollConn is a subscription over long polling: one poll after another,
// each from the last answer's since, on the session its key continues.
type pollConn struct{}

func (pollConn) run(ctx context.Context, s *Subscription, emit func(context.Context, *protocol.ServerFrame) error) error {
	key := ""
	u := s.c.nextURL() // one node for the session: its key is known there alone
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var a protocol.PollAnswer
		if err := s.poll(ctx, u, key, &a); err != nil {
			return err
		}
		for i := range a.Messages {
			if err := emit(ctx, &a.Messages[i]); err != nil {
				return err
			}
		}
		// The answer's since is the position after what it carried, all of
		// it delivered now: the next poll continues exactly there.
		if pos, err := protocol.DecodeCursor(a.Since, s.channels); err == nil {
			s.pos = pos
		}
		if a.Poll == "" {
			return errSessionOver
		}
		key = a.Poll
	}
}

var errSessionOver = &Error{Code: "session_over", Message: "the node ended the poll session"}

// poll polls once: with the session's key, or with a credential.
func (s *Subscription) poll(ctx context.Context, node *url.URL, key string, a *protocol.PollAnswer) error {
	// The key continues the session a credential opened: a ticket is not
	// spent on every poll (a token still goes along, for a poll that
	// reaches a node that does not know the key).
	u, q, h, err := s.c.requestTo(ctx, node, "/poll", key == "")
	if err != nil {
		return err
	}
	if key != "" {
		q.Set("poll", key)
	}
	q["channel"] = s.channels
	if since := s.since(); since != "" {
		q.Set("since", since)
	}
	q.Set("wait", s.c.cfg.PollWait.String())
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, s.c.cfg.PollWait+s.c.cfg.StallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header = h
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return refused(resp)
	}
	return json.NewDecoder(resp.Body).Decode(a)
}
