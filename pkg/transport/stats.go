package transport

import "sync/atomic"

// Stats are the transports' gauges and counters.
type Stats struct {
	// Connections counts open connections by transport, keyed by its
	// metric label ("sse", "websocket").
	Connections map[string]int
	PublishesWS uint64
	// Resume positions that could not be applied at all, per subscriber.
	GapsMalformed, GapsMismatch uint64
	// Direct counts messages queued to one client's connections; Drained
	// and Shed count connections ended by a drain and by rebalancing.
	Direct, Drained, Shed uint64
	// PresenceDropped counts presence events lost to a full queue or a
	// failed publish.
	PresenceDropped uint64
	// Refused counts connections refused at MaxConnections, RefusedPerIP
	// those refused at MaxConnectionsPerIP.
	Refused, RefusedPerIP uint64
	// RateLimitedWS counts WebSocket publishes refused over their rate.
	RateLimitedWS uint64
	// Expired counts connections ended because their token expired.
	Expired uint64
	// SentOn counts connections a draining or isolated node sent to
	// another node right after their handshake.
	SentOn uint64
}

type counters struct {
	pubWS                       atomic.Uint64
	gapsMalformed, gapsMismatch atomic.Uint64
	presenceDropped             atomic.Uint64
	refused, refusedPerIP       atomic.Uint64
	limitedWS                   atomic.Uint64
	expired, sentOn             atomic.Uint64
}

// Stats returns the transports' counters.
func (s *Server) Stats() Stats {
	c, r := &s.stats, s.reg
	return Stats{
		Connections: r.counts(true), PublishesWS: c.pubWS.Load(),
		GapsMalformed: c.gapsMalformed.Load(), GapsMismatch: c.gapsMismatch.Load(),
		Direct: r.direct.Load(), Drained: r.drained.Load(), Shed: r.shed.Load(),
		PresenceDropped: c.presenceDropped.Load(),
		Refused:         c.refused.Load(), RefusedPerIP: c.refusedPerIP.Load(),
		RateLimitedWS: c.limitedWS.Load(), Expired: c.expired.Load(), SentOn: c.sentOn.Load(),
	}
}
