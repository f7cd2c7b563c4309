package transport

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// PresenceSuffix names a channel's presence stream: joins and leaves of
// channel C are published, when C is opted in, to the channel C+PresenceSuffix.
const PresenceSuffix = auth.PresenceSuffix

// presenceQueue bounds the presence events waiting to be published.
const presenceQueue = 8192

type presenceEvent struct {
	channel string
	kind    string // "join" or "leave"
	who     presenceData
}

type presenceData struct {
	Client    string `json:"client"`
	Node      string `json:"node"`
	Transport string `json:"transport"`
}

// presenceOn reports whether channel's joins and leaves are published:
// it matches one of Config.PresenceChannels, exactly or, for a pattern
// ending in '*', by prefix. Presence streams themselves are never matched.
func (s *Server) presenceOn(channel string) bool {
	if strings.HasSuffix(channel, PresenceSuffix) {
		return false
	}
	for _, p := range s.cfg.PresenceChannels {
		if p == channel || (strings.HasSuffix(p, "*") && strings.HasPrefix(channel, p[:len(p)-1])) {
			return true
		}
	}
	return false
}

// joined and left queue a presence event for c on channel, if the channel
// is opted in. They never block: a full queue drops the event and counts it.
func (s *Server) joined(c *conn, channel string) { s.presence(c, channel, "join") }
func (s *Server) left(c *conn, channel string)   { s.presence(c, channel, "leave") }

func (s *Server) presence(c *conn, channel, kind string) {
	if len(s.cfg.PresenceChannels) == 0 || !s.presenceOn(channel) {
		return
	}
	in := c.info()
	ev := presenceEvent{channel: channel, kind: kind, who: presenceData{Client: in.ID, Node: in.Node, Transport: in.Transport}}
	select {
	case s.presenceQ <- ev:
	default:
		s.stats.presenceDropped.Add(1)
	}
}

// publishPresence publishes queued presence events until stop is closed,
// then what is left, within a bound.
func (s *Server) publishPresence(stop <-chan struct{}) {
	for {
		select {
		case ev := <-s.presenceQ:
			s.publishPresenceEvent(context.Background(), ev)
		case <-stop:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for {
				select {
				case ev := <-s.presenceQ:
					s.publishPresenceEvent(ctx, ev)
				default:
					return
				}
			}
		}
	}
}

func (s *Server) publishPresenceEvent(ctx context.Context, ev presenceEvent) {
	data, _ := json.Marshal(ev.who)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.app.Publish(ctx, ev.channel+PresenceSuffix, store.Message{Event: ev.kind, Data: string(data)}); err != nil {
		s.stats.presenceDropped.Add(1)
		s.log.Debug("failed to publish a presence event", "channel", ev.channel, "err", err)
	}
}
