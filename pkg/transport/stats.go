package transport

import "sync/atomic"

// Stats are the server's gauges and counters.
type Stats struct {
	SSE, WebSocket int64 // open connections by transport
	PublishesHTTP  uint64
	PublishesWS    uint64
	// Resume positions that could not be applied at all, per subscriber.
	GapsMalformed, GapsMismatch uint64
	// Direct counts messages queued to one client's connections; Drained
	// and Shed count connections ended by a drain and by rebalancing.
	Direct, Drained, Shed uint64
	// PresenceDropped counts presence events lost to a full queue or a
	// failed publish.
	PresenceDropped uint64
	// Refused counts streams refused at MaxConnections, RefusedPerIP those
	// refused at MaxConnectionsPerIP.
	Refused, RefusedPerIP uint64
	// AuthFailed counts requests refused for a missing or invalid
	// credential (401); Forbidden those whose credential does not allow
	// what they asked (403, and WebSocket forbidden frames).
	AuthFailed, Forbidden uint64
	// RateLimitedHTTP and RateLimitedWS count publishes refused for going
	// over their rate.
	RateLimitedHTTP, RateLimitedWS uint64
	// Expired counts connections ended because their token expired.
	Expired uint64
	// SentOn counts streams a draining or isolated node sent to another
	// node right after their handshake.
	SentOn uint64
}

type counters struct {
	sse, ws                     atomic.Int64
	pubHTTP, pubWS              atomic.Uint64
	gapsMalformed, gapsMismatch atomic.Uint64
	direct, drained, shed       atomic.Uint64
	presenceDropped             atomic.Uint64
	refused, refusedPerIP       atomic.Uint64
	authFailed, forbidden       atomic.Uint64
	limitedHTTP, limitedWS      atomic.Uint64
	expired, sentOn             atomic.Uint64
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		SSE: c.sse.Load(), WebSocket: c.ws.Load(),
		PublishesHTTP: c.pubHTTP.Load(), PublishesWS: c.pubWS.Load(),
		GapsMalformed: c.gapsMalformed.Load(), GapsMismatch: c.gapsMismatch.Load(),
		Direct: c.direct.Load(), Drained: c.drained.Load(), Shed: c.shed.Load(),
		PresenceDropped: c.presenceDropped.Load(),
		Refused:         c.refused.Load(), RefusedPerIP: c.refusedPerIP.Load(),
		AuthFailed: c.authFailed.Load(), Forbidden: c.forbidden.Load(),
		RateLimitedHTTP: c.limitedHTTP.Load(), RateLimitedWS: c.limitedWS.Load(),
		Expired: c.expired.Load(), SentOn: c.sentOn.Load(),
	}
}

// gauge returns the open-connection gauge for c's transport.
func (s *Server) gauge(c client) *atomic.Int64 {
	if _, ok := c.(*wsConn); ok {
		return &s.stats.ws
	}
	return &s.stats.sse
}
