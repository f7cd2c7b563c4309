package node

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pushcluster/pushcluster/internal/logbuf"
)

func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                   string
		fds                    uint64
		streams, spare, pool   int
		wantStreams, wantConns int
	}{
		// The host: 20,000 descriptors, a 20-connection Redis pool.
		{"derived", 20_000, 0, 128, 20, 20_000 - 40 - 64 - 128, 20_000 - 40 - 64},
		{"given", 20_000, 500, 128, 20, 500, 628},
		{"small limit", 256, 0, 128, 20, 76, 152},
		{"tiny limit", 64, 0, 128, 20, 16, 32},
	}
	for _, tc := range cases {
		s, c := connectionLimits(tc.fds, tc.streams, tc.spare, tc.pool)
		if s != tc.wantStreams || c != tc.wantConns {
			t.Errorf("%s: %d streams, %d connections; want %d, %d", tc.name, s, c, tc.wantStreams, tc.wantConns)
		}
		if tc.streams == 0 && uint64(c+2*tc.pool) > tc.fds && tc.fds > 2*uint64(tc.pool)+fdReserve {
			t.Errorf("%s: %d connections and Redis exceed %d descriptors", tc.name, c, tc.fds)
		}
	}
}

// emfileListener fails Accept with EMFILE a number of times, then accepts.
type emfileListener struct {
	net.Listener
	fails atomic.Int64
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// Out of descriptors, Accept fails with EMFILE: the listener says so at a
// bounded rate, net/http backs off rather than spinning, and serving
// resumes by itself once descriptors are free again.
func TestListenerOutOfDescriptors(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stub := &emfileListener{Listener: inner}
	stub.fails.Store(4)
	var logs logbuf.Buffer
	ln := newLimitListener(stub, 10, slog.New(slog.NewTextHandler(&logs, nil)))
	hs := &http.Server{
		Handler:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	t.Cleanup(func() {
		hs.Close()
		<-served
	})
	resp, err := http.Get("http://" + inner.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || stub.fails.Load() >= 0 {
		t.Fatalf("status %d with %d failures to go", resp.StatusCode, stub.fails.Load())
	}
	if n := strings.Count(logs.String(), "out of file descriptors"); n != 1 {
		t.Errorf("4 failed accepts logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("not logged as an error:\n%s", logs.String())
	}
}

// A connection over the listener's limit is answered 503 with Retry-After
// and closed, without reaching the server; closing one lets the next in.
func TestListenerRefusesOverLimit(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(inner, 1, slog.New(slog.DiscardHandler))
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		ln.wait()
	})
	first, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	held := <-accepted
	over, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	io.WriteString(over, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	answer, err := io.ReadAll(over)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(answer)), nil)
	if err != nil {
		t.Fatalf("answer %q: %v", answer, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "too_many_connections") {
		t.Errorf("over the limit: %d, Retry-After %q, %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if ln.Refused() != 1 {
		t.Errorf("%d refused, want 1", ln.Refused())
	}
	held.Close()
	next, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(time.Minute):
		t.Fatal("a connection after one closed was not accepted")
	}
}
