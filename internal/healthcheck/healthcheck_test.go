package healthcheck

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	t.Parallel()
	for listen, want := range map[string]string{
		":6788":          "http://127.0.0.1:6788/healthz",
		"0.0.0.0:80":     "http://127.0.0.1:80/healthz",
		"[::]:6788":      "http://127.0.0.1:6788/healthz",
		"10.1.2.3:6788":  "http://10.1.2.3:6788/healthz",
		"[::1]:6788":     "http://[::1]:6788/healthz",
		"localhost:6788": "http://localhost:6788/healthz",
	} {
		got, err := URL(listen, "/healthz")
		if err != nil || got != want {
			t.Errorf("URL(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
	if _, err := URL("6788", "/healthz"); err == nil {
		t.Error("URL(\"6788\") succeeded; a port alone is not an address")
	}
}

func TestProbe(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			http.Error(w, `{"ready":false}`, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	if err := Probe(ctx, srv.URL+"/healthz", 0); err != nil {
		t.Errorf("healthy server: %v", err)
	}
	err := Probe(ctx, srv.URL+"/readyz", 0)
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "503") {
		t.Errorf("unready server: got %v, want ErrUnhealthy naming the 503", err)
	}
}

func TestProbeNothingListening(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	u, _ := URL(addr, "/healthz")
	if err := Probe(context.Background(), u, 0); err == nil {
		t.Error("probe of a closed port succeeded")
	}
}
