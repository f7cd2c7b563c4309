package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/limit"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// allowPublish checks a publish frame against the token's publish claim
// and the connection's rate, answering an error frame when refused.
func (c *wsConn) allowPublish(f protocol.ClientFrame, p protocol.PublishRequest) bool {
	switch {
	case p.Client != "" && !c.who.Load().CanPublishDirect():
		c.srv.auth.Forbidden()
		c.reject(f.Ref, protocol.CodeForbidden, errors.New(`publishing to one client needs a publish claim of "*"`))
		return false
	case p.Client == "" && !c.who.Load().CanPublish(p.Channel):
		c.srv.auth.Forbidden()
		c.reject(f.Ref, protocol.CodeForbidden, auth.ErrCannotPublish(p.Channel))
		return false
	}
	if c.pubLimit == nil {
		c.pubLimit = c.srv.connRate.New()
	}
	if ok, wait := limit.Allow(c.pubLimit); !ok {
		c.srv.stats.limitedWS.Add(1)
		c.reject(f.Ref, protocol.CodeRateLimited, fmt.Errorf("too many publishes: retry in %v", wait.Round(time.Millisecond)))
		return false
	}
	return true
}

// reauth replaces the connection's token with a fresh one of the same
// user before the old one expires: the connection stays open, and
// subscriptions the new claims no longer allow end with an unsubscribed
// frame whose reason is "forbidden".
func (c *wsConn) reauth(f protocol.ClientFrame) {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	p, err := c.srv.auth.Verify(ctx, f.Token)
	if err != nil {
		c.srv.auth.Failed()
		_, code := auth.Code(err)
		c.reject(f.Ref, code, err)
		return
	}
	if p.Subject != c.who.Load().Subject {
		c.srv.auth.Forbidden()
		c.reject(f.Ref, protocol.CodeForbidden, errors.New("the token is for another user: open a new connection"))
		return
	}
	if !c.who.Load().Expires.IsZero() && !c.srv.expiries.remove(&c.conn) {
		c.reject(f.Ref, protocol.CodeTokenExpired, errTokenExpired) // too late: the close is under way
		return
	}
	c.who.Store(p)
	c.srv.expiries.add(&c.conn, p.Expires)
	for _, ch := range c.channels() {
		if !p.CanRead(ch) && c.leave(ch) {
			c.reply(&protocol.ServerFrame{Type: protocol.TypeUnsubscribed, Channel: ch, Reason: protocol.CodeForbidden})
		}
	}
	reply := &protocol.ServerFrame{Type: protocol.TypeAuthed, Ref: f.Ref, Client: c.client}
	if !p.Expires.IsZero() {
		reply.Expires = p.Expires.UTC().Format(time.RFC3339)
	}
	c.reply(reply)
}
