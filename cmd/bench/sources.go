package main

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// maxSources bounds a source range, so a typo cannot ask for millions.
const maxSources = 4096

// parseSources reads -source-ips: "auto" (DefaultLocalSources when the
// target is on loopback, else none), "none", or a comma-separated list of
// addresses and inclusive ranges "a-b".
func parseSources(spec string, target string, startNode bool) ([]netip.Addr, error) {
	switch strings.TrimSpace(spec) {
	case "none", "":
		return nil, nil
	case "auto":
		if !startNode && !isLoopback(target) {
			return nil, nil
		}
		spec = DefaultLocalSources
	}
	var out []netip.Addr
	for part := range strings.SplitSeq(spec, ",") {
		addrs, err := parseRange(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		out = append(out, addrs...)
		if len(out) > maxSources {
			return nil, fmt.Errorf("bench: more than %d source addresses", maxSources)
		}
	}
	return out, nil
}

func parseRange(s string) ([]netip.Addr, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	first, err := netip.ParseAddr(lo)
	if err != nil {
		return nil, fmt.Errorf("bench: bad source address %q: %w", lo, err)
	}
	last := first
	if isRange {
		if last, err = netip.ParseAddr(hi); err != nil {
			return nil, fmt.Errorf("bench: bad source address %q: %w", hi, err)
		}
	}
	if last.Less(first) || first.Is4() != last.Is4() {
		return nil, fmt.Errorf("bench: bad source range %q", s)
	}
	var out []netip.Addr
	for a := first; a.Compare(last) <= 0 && len(out) <= maxSources; a = a.Next() {
		out = append(out, a)
	}
	return out, nil
}

// isLoopback reports whether the URL's host is a loopback name or address.
func isLoopback(target string) bool {
	u, err := url.Parse(target)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// sources hands out local addresses to clients round-robin, with one dialer
// and one HTTP client (for WebSocket handshakes) per address. Each local
// address has its own ~28k ephemeral ports, so spreading connections over
// them lifts that limit.
type sources struct {
	addrs   []netip.Addr
	dialers []*net.Dialer
	clients []*http.Client
}

func newSources(addrs []netip.Addr, timeout time.Duration) *sources {
	s := &sources{addrs: addrs}
	if len(addrs) == 0 {
		addrs = []netip.Addr{{}} // the OS chooses
	}
	for _, a := range addrs {
		d := &net.Dialer{Timeout: timeout, KeepAlive: -1}
		if a.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: a.AsSlice()}
		}
		tr := &http.Transport{DialContext: d.DialContext, DisableCompression: true, MaxIdleConnsPerHost: -1}
		s.dialers = append(s.dialers, d)
		s.clients = append(s.clients, &http.Client{Transport: tr})
	}
	return s
}

// index returns which source client i uses.
func (s *sources) index(i int) int { return i % len(s.dialers) }

// dialer returns the dialer client i uses.
func (s *sources) dialer(i int) *net.Dialer { return s.dialers[s.index(i)] }

// httpClient returns the HTTP client client i uses for a WebSocket handshake.
func (s *sources) httpClient(i int) *http.Client { return s.clients[s.index(i)] }

// describe says which addresses connections come from.
func (s *sources) describe() string { return describeSources(s.addrs) }

func describeSources(addrs []netip.Addr) string {
	switch len(addrs) {
	case 0:
		return "chosen by the OS"
	case 1:
		return addrs[0].String()
	}
	return fmt.Sprintf("%s … %s (%d addresses)", addrs[0], addrs[len(addrs)-1], len(addrs))
}

// close releases the handshake clients' idle connections.
func (s *sources) close() {
	for _, c := range s.clients {
		c.CloseIdleConnections()
	}
}
