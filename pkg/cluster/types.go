package cluster

import (
	"time"
)

// Client is one client connection, as cluster queries report it.
type Client struct {
	ID        string    `json:"id"`
	Node      string    `json:"node"`
	Transport string    `json:"transport"` // the transport's name: "sse", "ws", "poll"
	Since     time.Time `json:"since"`
}

// Direct is a message to one client, outside any channel.
type Direct struct {
	ID    string `json:"id"`
	Event string `json:"event,omitempty"`
	Data  string `json:"data"`
}

// Load is what a member carries, as it gossips it.
type Load struct {
	// Connections counts the member's connections by transport name, every
	// transport it serves included, with none.
	Connections Conns
	// Subscriptions counts its live subscriptions.
	Subscriptions int
}

// Local is the node's own part in cluster questions. Its methods are
// called from memberlist's goroutines and from query handlers: they must be
// safe for concurrent use, must be quick and must never block on a client
// connection.
type Local interface {
	// Load returns the node's current load.
	Load() Load
	// Draining reports whether the node is draining its connections.
	Draining() bool
	// Presence lists the local clients subscribed to channel.
	Presence(channel string) []Client
	// PresenceCount returns the distinct client and user IDs subscribed to
	// channel here.
	PresenceCount(channel string) (clients, users []string)
	// Clients lists up to limit local clients whose ID sorts after after,
	// in ID order.
	Clients(after string, limit int) []Client
	// Deliver queues m to every local connection of client and returns how
	// many it was queued to.
	Deliver(client string, m Direct) int
	// Disconnect closes every local connection of client and returns how
	// many there were.
	Disconnect(client string) int
}

// Member states, as one member sees another.
const (
	StateAlive   = "alive"
	StateSuspect = "suspect"
	StateDead    = "dead"
	StateLeft    = "left"
)

// Member is one node as this node sees it.
type Member struct {
	Name        string    `json:"name"`
	State       string    `json:"state"`
	HTTP        string    `json:"http"`
	Gossip      string    `json:"gossip"`
	Connections Conns     `json:"connections"`
	Subs        int       `json:"subscriptions"`
	Draining    bool      `json:"draining"`
	Version     string    `json:"version"`
	Started     time.Time `json:"started"`
	Self        bool      `json:"self,omitempty"`
	// Auth is "required" when the member authenticates its callers, else
	// "open"; members that require it answer only members that do too.
	Auth string `json:"auth"`
}

// Conns is a member's connection counts by transport name: {"sse":N,"ws":N}
// and one key per other transport it serves.
type Conns map[string]int

// Total is every connection of the member.
func (c Conns) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// Answer is the result of a question asked of every member.
type Answer struct {
	// Partial is set when some members did not answer in time.
	Partial bool
	// Missing names the members that did not answer.
	Missing []string
}
