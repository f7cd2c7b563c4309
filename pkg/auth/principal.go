package auth

import (
	"strconv"
	"strings"
	"time"
)

// Principal is who a request comes from, as verified once when it was
// made. Its methods do no I/O and are safe for concurrent use; a Principal
// is never modified after it is made.
type Principal struct {
	// Subject is the user ID (a token's sub). Empty for an API key and
	// for an open node.
	Subject string
	// Channels and Publish are what a token allows to read and publish.
	Channels, Publish Patterns
	// Expires is when the token (or the ticket's token) expires. Zero
	// means never: an API key, an open node.
	Expires time.Time
	// Via says how the request authenticated: "open", "api-key", "token"
	// or "ticket".
	Via string
	// KeyID names the API key used (its position, from 1), for rate limits.
	KeyID int
	// all is set for an API key and for an open node: every channel, every API.
	all bool
}

// Open is the principal of every request to a node that has no
// authentication configured.
var Open = &Principal{Via: "open", all: true}

// Admin reports whether p may use the admin APIs (presence of any channel,
// the client list, disconnect, the cluster view) and publish anywhere:
// an API key, or anyone on an open node.
func (p *Principal) Admin() bool { return p.all }

// CanRead reports whether p may subscribe to channel, resume it, read its
// history and its presence stream (which follows its channel's rule). A
// user channel "<name>#<user>" is readable only by that user, even with a
// claim of "*"; API keys and open nodes read everything.
func (p *Principal) CanRead(channel string) bool {
	if p.all {
		return true
	}
	if owner, ok := Owner(channel); ok && (owner == "" || owner != p.Subject) {
		return false
	}
	return p.Channels.Match(strings.TrimSuffix(channel, PresenceSuffix)) || p.Channels.Match(channel)
}

// CanPublish reports whether p may publish to channel.
func (p *Principal) CanPublish(channel string) bool {
	return p.all || p.Publish.Match(channel)
}

// CanPublishDirect reports whether p may send a message to one client
// outside any channel: an API key, an open node, or a token whose publish
// claim holds "*".
func (p *Principal) CanPublishDirect() bool {
	if p.all {
		return true
	}
	for _, pat := range p.Publish {
		if pat == "*" {
			return true
		}
	}
	return false
}

// RateKey names the credential p's HTTP publishes are counted against: the
// API key, or the token's user. Empty for an open node (the caller counts
// by address instead).
func (p *Principal) RateKey() string {
	switch {
	case p.KeyID > 0:
		return "key:" + strconv.Itoa(p.KeyID)
	case p.Subject != "":
		return "sub:" + p.Subject
	}
	return ""
}
