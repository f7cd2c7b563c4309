package front

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushcluster/pushcluster/internal/logbuf"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testHandler's /stream takes its connection over and says who served it
// and what the client sent after its request; ?fail answers 401 instead,
// ?panic panics. /other answers "other".
func testHandler(contexts chan<- context.Context) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		if contexts != nil {
			contexts <- r.Context()
		}
		switch {
		case r.URL.Query().Has("fail"):
			w.Header().Set("X-Test", "set by the handler")
			http.Error(w, "no", http.StatusUnauthorized)
			return
		case r.URL.Query().Has("panic"):
			panic("the handler failed")
		}
		who := "http"
		if _, ok := w.(*response); ok {
			who = "front"
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		early, _ := brw.Reader.Peek(brw.Reader.Buffered())
		fmt.Fprintf(c, "took by %s %s early=%q\n", who, r.Method, early)
		c.Close()
	})
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "other")
	})
	return mux
}

func testFront(t *testing.T, h http.Handler, tune func(*http.Server)) (string, *http.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	if tune != nil {
		tune(hs)
	}
	l := Listen(ln, hs, "/stream", "/s")
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(l)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
		l.Wait()
	})
	return ln.Addr().String(), hs
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// exchange writes raw and returns all the server sends until it closes.
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c := dial(t, addr)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("no close after %q: %v (got %q)", raw, err, got)
	}
	return string(got)
}

func TestTheFrontTakesItsRoutesFirstRequests(t *testing.T) {
	t.Parallel()
	addr, _ := testFront(t, testHandler(nil), nil)
	for _, tc := range []struct{ name, raw, want string }{
		{"with what follows", "GET /stream HTTP/1.1\r\nHost: x\r\n\r\nEARLY", `took by front GET early="EARLY"`},
		{"with a query", "GET /stream?channel=a HTTP/1.1\r\nHost: x\r\n\r\n", `took by front GET early=""`},
		{"bare line feeds", "GET /stream HTTP/1.1\nHost: x\n\n", `took by front GET early=""`},
	} {
		if got := exchange(t, addr, tc.raw); got != tc.want+"\n" {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestEverythingElseGoesToNetHTTP(t *testing.T) {
	t.Parallel()
	addr, _ := testFront(t, testHandler(nil), nil)
	big := "Cookie: " + strings.Repeat("c", readerSize) + "\r\n"
	for _, tc := range []struct{ name, raw, want string }{
		{"another method", "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "took by http POST"},
		{"HTTP/1.0", "GET /stream HTTP/1.0\r\nHost: x\r\n\r\n", "took by http GET"},
		{"a header past the front's reader", "GET /stream HTTP/1.1\r\nHost: x\r\n" + big + "\r\n", "took by http GET"},
		{"a longer path", "GET /streams HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "404 Not Found"},
		{"a path the front's is a prefix of", "GET /s/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "404 Not Found"},
		{"junk", "\x16\x03\x01\x02\x00junk\r\n\r\n", "400 Bad Request"},
	} {
		if got := exchange(t, addr, tc.raw); !strings.Contains(got, tc.want) {
			t.Errorf("%s: got %q, want %q in it", tc.name, got, tc.want)
		}
	}
}

// A connection handed on keeps alive, and its later requests for the
// front's routes are net/http's.
func TestHandedOnConnectionsKeepAlive(t *testing.T) {
	t.Parallel()
	addr, _ := testFront(t, testHandler(nil), nil)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for range 3 {
		io.WriteString(c, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(body) != "other" {
			t.Fatalf("got %d %q", res.StatusCode, body)
		}
	}
	io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
	if line, _ := br.ReadString('\n'); line != "took by http GET early=\"\"\n" {
		t.Fatalf("got %q", line)
	}
}

func TestAnAnswerInsteadOfATakeOver(t *testing.T) {
	t.Parallel()
	addr, _ := testFront(t, testHandler(nil), nil)
	c := dial(t, addr)
	io.WriteString(c, "GET /stream?fail HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusUnauthorized || string(body) != "no\n" ||
		res.Header.Get("X-Test") != "set by the handler" || !res.Close ||
		res.Header.Get("Content-Type") != "text/plain; charset=utf-8" || res.Header.Get("Date") == "" {
		t.Fatalf("got %d %q %v", res.StatusCode, body, res.Header)
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the connection stays open: %d, %v", n, err)
	}
}

func TestUnreadableRequestsAre400(t *testing.T) {
	t.Parallel()
	addr, _ := testFront(t, testHandler(nil), nil)
	for _, tc := range []struct{ name, raw, want string }{
		{"no Host", "GET /stream HTTP/1.1\r\n\r\n", "missing required Host header"},
		{"a malformed line", "GET /stream HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", "malformed MIME header"},
		{"a malformed Host", "GET /stream HTTP/1.1\r\nHost: a b\r\n\r\n", "malformed Host header"},
		{"two Hosts", "GET /stream HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "too many Host headers"},
	} {
		got := exchange(t, addr, tc.raw)
		if !strings.HasPrefix(got, "HTTP/1.1 400 Bad Request\r\n") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: got %q", tc.name, got)
		}
	}
}

// A request whose header does not arrive in time is cut, as net/http
// cuts one; so is a connection that sends nothing.
func TestSlowHeadersAreCut(t *testing.T) {
	t.Parallel()
	addr, _ := testFront(t, testHandler(nil), func(hs *http.Server) { hs.ReadHeaderTimeout = 200 * time.Millisecond })
	for _, raw := range []string{"GET /stream HTTP/1.1\r\nHost: x\r\n", "GET /str", ""} {
		if got := exchange(t, addr, raw); got != "" {
			t.Errorf("%q: got %q", raw, got)
		}
	}
}

func TestAPanicIsLoggedAndItsConnectionClosed(t *testing.T) {
	t.Parallel()
	var logged logbuf.Buffer
	addr, _ := testFront(t, testHandler(nil), func(hs *http.Server) { hs.ErrorLog = log.New(&logged, "", 0) })
	if got := exchange(t, addr, "GET /stream?panic HTTP/1.1\r\nHost: x\r\n\r\n"); got != "" {
		t.Fatalf("got %q", got)
	}
	if !strings.Contains(logged.String(), "http: panic serving 127.0.0.1:") || !strings.Contains(logged.String(), "the handler failed") {
		t.Fatalf("logged %q", logged.String())
	}
	if got := exchange(t, addr, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(got, "took by front") {
		t.Fatalf("after the panic: got %q", got)
	}
}

func TestTheRequestContextEndsWithTheHandler(t *testing.T) {
	t.Parallel()
	contexts := make(chan context.Context, 1)
	addr, hs := testFront(t, testHandler(contexts), nil)
	exchange(t, addr, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
	ctx := <-contexts
	if ctx.Value(http.ServerContextKey) != hs {
		t.Error("no server in the request's context")
	}
	// The client sees the connection close inside the handler, a moment
	// before it returns and its context ends.
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Error("the request's context outlives its handler")
	}
}

// Closing the server ends first requests still being read, and Wait
// returns once they have.
func TestCloseEndsFirstRequestsBeingRead(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: testHandler(nil), ReadHeaderTimeout: time.Minute}
	l := Listen(ln, hs, "/stream")
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(l)
	}()
	c := dial(t, ln.Addr().String())
	io.WriteString(c, "GET /stream HTTP/1.1\r\n")
	// The front has the connection once it is reading it.
	for {
		l.mu.Lock()
		n := len(l.reading)
		l.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	hs.Close()
	<-done
	l.Wait()
	// Closed with its request unread: reset, or ended.
	if got, _ := io.ReadAll(c); len(got) > 0 {
		t.Fatalf("got %q", got)
	}
}

// Many clients at once, half on the front's route and half not, are
// each served by the right server.
func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	addr, _ := testFront(t, testHandler(nil), nil)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw, want := "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", "took by front"
			if i%2 == 1 {
				raw, want = "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "took by http"
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			io.WriteString(c, raw)
			got, err := io.ReadAll(c)
			if err != nil || !strings.HasPrefix(string(got), want) {
				errs <- fmt.Errorf("client %d: got %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestVerdict(t *testing.T) {
	paths := []string{"/sse", "/ws"}
	for _, tc := range []struct {
		b          string
		ours, done bool
	}{
		{"", false, false},
		{"GE", false, false},
		{"PO", false, true},
		{"GET /s", false, false},
		{"GET /x", false, true},
		{"GET /sse", false, false},
		{"GET /ssex", false, true},
		{"GET /sse?channel=a HTTP/1.1\r\nHost: x\r\n", false, false},
		{"GET /sse?channel=a HTTP/1.1\r\nHost: x\r\n\r\n", true, true},
		{"GET /ws HTTP/1.1\nHost: x\n\n", true, true},
		{"GET /ws HTTP/1.0\r\nHost: x\r\n\r\n", false, true},
		{"GET /ws\r\n\r\n", false, true},
		{"GET /sse HTTP/1.1\r\nHost: " + strings.Repeat("x", 64), false, true},
	} {
		ours, done := verdict([]byte(tc.b), paths, 4, 48)
		if ours != tc.ours || done != tc.done {
			t.Errorf("verdict(%q) = %v, %v; want %v, %v", tc.b, ours, done, tc.ours, tc.done)
		}
	}
}

// The verdict on a request's start stands whatever follows it, and the
// front only takes a GET of its paths in HTTP/1.1.
func FuzzVerdict(f *testing.F) {
	f.Add([]byte("GET /sse?channel=a HTTP/1.1\r\nHost: x\r\n\r\n"), 20)
	f.Add([]byte("GET /ws HTTP/1.1\nHost: x\n\nframes"), 9)
	f.Add([]byte("POST /sse HTTP/1.1\r\n\r\n"), 3)
	paths := []string{"/sse", "/ws"}
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		const window = 64
		ours, done := verdict(b, paths, 4, window)
		if ours && (!done || !(bytes.HasPrefix(b, []byte("GET /sse")) || bytes.HasPrefix(b, []byte("GET /ws"))) ||
			!bytes.Contains(b, []byte(" HTTP/1.1"))) {
			t.Fatalf("verdict(%q) = %v, %v", b, ours, done)
		}
		if cut < 0 || cut > len(b) {
			return
		}
		if early, decided := verdict(b[:cut], paths, 4, window); decided && (early != ours || !done) {
			t.Fatalf("verdict(%q) = %v but verdict(%q) = %v, %v", b[:cut], early, b, ours, done)
		}
	})
}
