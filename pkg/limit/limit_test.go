package limit

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted, err := ParsePrefixes([]string{"10.0.0.0/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		peer, xff, want string
		trusted         bool
	}{
		{"203.0.113.5:1234", "1.2.3.4", "203.0.113.5", true},    // untrusted peer: XFF ignored
		{"10.1.2.3:1234", "198.51.100.7", "198.51.100.7", true}, // trusted proxy
		{"10.1.2.3:1234", "6.6.6.6, 198.51.100.7, 10.9.9.9", "198.51.100.7", true},
		{"10.1.2.3:1234", "", "10.1.2.3", true},
		{"10.1.2.3:1234", "junk", "10.1.2.3", true},
		{"10.1.2.3:1234", "198.51.100.7", "10.1.2.3", false}, // no trusted proxies configured
		{"[::ffff:192.0.2.1]:80", "198.51.100.8", "198.51.100.8", true},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		tp := trusted
		if !c.trusted {
			tp = nil
		}
		if got := ClientAddr(r, tp); got != netip.MustParseAddr(c.want) {
			t.Errorf("peer %s XFF %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	if _, err := ParsePrefixes([]string{"nonsense"}); err == nil {
		t.Error("nonsense accepted")
	}
}

func TestConnsAndRates(t *testing.T) {
	t.Parallel()
	c := NewConns(2)
	a, b := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	if !c.Acquire(a) || !c.Acquire(a) || c.Acquire(a) || !c.Acquire(b) {
		t.Fatal("per-address slots")
	}
	c.Release(a)
	if !c.Acquire(a) {
		t.Fatal("a released slot not reusable")
	}
	k := NewKeyed(1, 3)
	for i := range 3 {
		if ok, _ := k.Allow("x"); !ok {
			t.Fatalf("burst event %d refused", i)
		}
	}
	if ok, wait := k.Allow("x"); ok || wait <= 0 {
		t.Errorf("past the burst: %v %v", ok, wait)
	}
	if ok, _ := k.Allow("y"); !ok {
		t.Error("another key throttled")
	}
	if ok, _ := NewKeyed(0, 0).Allow("x"); !ok {
		t.Error("no limit refused")
	}
}

// X-Forwarded-For is whatever a client sends: it never panics, and the
// address it yields is the peer's unless the peer is trusted.
func FuzzClientAddr(f *testing.F) {
	trusted, _ := ParsePrefixes([]string{"10.0.0.0/8"})
	f.Add("10.1.1.1:80", "1.2.3.4, 10.0.0.2")
	f.Add("203.0.113.1:80", "::1")
	f.Add("garbage", ",,,")
	f.Fuzz(func(t *testing.T, peer, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		got := ClientAddr(r, trusted)
		if p := parseHost(peer); !trusted[0].Contains(p) && got != p {
			t.Fatalf("an untrusted peer %q was replaced by %s", peer, got)
		}
	})
}
