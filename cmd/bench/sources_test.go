package main

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestParseSources(t *testing.T) {
	t.Parallel()
	cases := []struct {
		spec, target string
		start        bool
		want         int
		first, last  string
	}{
		{"auto", "http://127.0.0.1:6788", false, 19, "127.0.0.2", "127.0.0.20"},
		{"auto", "http://localhost:6788", false, 19, "127.0.0.2", "127.0.0.20"},
		{"auto", "http://node.example:6788", false, 0, "", ""},
		{"auto", "http://node.example:6788", true, 19, "127.0.0.2", "127.0.0.20"},
		{"none", "http://127.0.0.1:6788", false, 0, "", ""},
		{"127.0.0.5", "", false, 1, "127.0.0.5", "127.0.0.5"},
		{"127.0.0.250-127.0.1.3", "", false, 10, "127.0.0.250", "127.0.1.3"},
		{"127.0.0.2-127.0.0.3, 127.0.0.9", "", false, 3, "127.0.0.2", "127.0.0.9"},
	}
	for _, c := range cases {
		got, err := parseSources(c.spec, c.target, c.start)
		if err != nil {
			t.Errorf("%q: %v", c.spec, err)
			continue
		}
		if len(got) != c.want {
			t.Errorf("%q for %s: %d addresses, want %d", c.spec, c.target, len(got), c.want)
			continue
		}
		if c.want > 0 && (got[0].String() != c.first || got[len(got)-1].String() != c.last) {
			t.Errorf("%q: %s … %s, want %s … %s", c.spec, got[0], got[len(got)-1], c.first, c.last)
		}
	}
}

func TestParseSourcesRejects(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"127.0.0.9-127.0.0.2", "nonsense", "127.0.0.1-::1", "10.0.0.0-10.1.0.0"} {
		if _, err := parseSources(spec, "", false); err == nil {
			t.Errorf("%q accepted", spec)
		}
	}
}

func TestClientsSpreadEvenlyOverSources(t *testing.T) {
	t.Parallel()
	addrs, err := parseSources("127.0.0.2-127.0.0.8", "", false)
	if err != nil {
		t.Fatal(err)
	}
	s := newSources(addrs, time.Second)
	t.Cleanup(s.close)
	counts := make(map[netip.Addr]int)
	const clients = 1000
	for i := range clients {
		counts[addrs[s.index(i)]]++
	}
	lo, hi := clients, 0
	for _, n := range counts {
		lo, hi = min(lo, n), max(hi, n)
	}
	if len(counts) != len(addrs) || hi-lo > 1 {
		t.Fatalf("%d clients over %d sources: %v", clients, len(addrs), counts)
	}
}

// TestDialerBindsSource connects from each source address to a real
// loopback listener and checks the address the server sees.
func TestDialerBindsSource(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	addrs, _ := parseSources("127.0.0.3-127.0.0.4", "", false)
	s := newSources(addrs, time.Second)
	t.Cleanup(s.close)
	for i := range 2 {
		c, err := s.dialer(i).DialContext(context.Background(), "tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		srv, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		got := srv.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
		srv.Close()
		c.Close()
		if got != addrs[i] {
			t.Errorf("client %d came from %s, want %s", i, got, addrs[i])
		}
	}
}

func TestOSChoosesWithoutSources(t *testing.T) {
	t.Parallel()
	s := newSources(nil, time.Second)
	t.Cleanup(s.close)
	if s.dialer(7).LocalAddr != nil || s.describe() != "chosen by the OS" {
		t.Fatal("no sources should leave the local address to the OS")
	}
}
