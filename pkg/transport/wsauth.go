package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pushcluster/pushcluster/pkg/limit"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// allowPublish checks a publish frame against the token's publish claim
// and the connection's rate, answering an error frame when refused.
func (c *wsConn) allowPublish(f protocol.ClientFrame, p protocol.PublishRequest) bool {
	switch {
	case p.Client != "" && !c.who.CanPublishDirect():
		c.srv.stats.forbidden.Add(1)
		c.reject(f.Ref, protocol.CodeForbidden, errors.New(`publishing to one client needs a publish claim of "*"`))
		return false
	case p.Client == "" && !c.who.CanPublish(p.Channel):
		c.srv.stats.forbidden.Add(1)
		c.reject(f.Ref, protocol.CodeForbidden, errCannotPublish(p.Channel))
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
	p, err := c.srv.cfg.Auth.Verify(ctx, f.Token)
	if err != nil {
		c.srv.stats.authFailed.Add(1)
		_, code := authCode(err)
		c.reject(f.Ref, code, err)
		return
	}
	if p.Subject != c.who.Subject {
		c.srv.stats.forbidden.Add(1)
		c.reject(f.Ref, protocol.CodeForbidden, errors.New("the token is for another user: open a new connection"))
		return
	}
	if !c.who.Expires.IsZero() && !c.srv.expiries.remove(c) {
		c.reject(f.Ref, protocol.CodeTokenExpired, errTokenExpired) // too late: the close is under way
		return
	}
	c.who = p
	c.srv.expiries.add(c, p.Expires)
	for _, ch := range c.unreadable() {
		c.revoke(ch)
	}
	reply := &protocol.ServerFrame{Type: "authed", Ref: f.Ref, Client: c.client}
	if !p.Expires.IsZero() {
		reply.Expires = p.Expires.UTC().Format(time.RFC3339)
	}
	c.reply(reply)
}

// revoke ends the subscription to channel, telling the client why.
func (c *wsConn) revoke(channel string) {
	c.mu.Lock()
	sub := c.subs[channel]
	delete(c.subs, channel)
	c.mu.Unlock()
	if sub == nil {
		return
	}
	c.srv.cfg.Hub.Leave(sub)
	c.srv.left(c, channel)
	c.reply(&protocol.ServerFrame{Type: "unsubscribed", Channel: channel, Reason: protocol.CodeForbidden})
}

// unreadable lists the subscribed channels the current token does not allow.
func (c *wsConn) unreadable() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for ch := range c.subs {
		if !c.who.CanRead(ch) {
			out = append(out, ch)
		}
	}
	return out
}

// expire closes the connection with StatusTokenExpired, after an error
// frame saying so.
func (c *wsConn) expire() {
	c.srv.stats.expired.Add(1)
	c.box.offer(wsEncode(&protocol.ServerFrame{Type: "error", Code: protocol.CodeTokenExpired, Message: errTokenExpired.Error()}))
	c.box.closeAfterFlush(errTokenExpired)
}
