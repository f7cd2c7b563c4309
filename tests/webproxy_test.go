//go:build unix

package tests

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// webProxy is an HTTP proxy in front of nodes, round-robin, that can
// behave like the proxies that break push: refuse WebSocket upgrades,
// buffer responses whole (so a stream shows nothing until it ends), and
// lose a node at once (its connections reset, no new ones sent to it).
// It serves test pages of its own under /test/.
type webProxy struct {
	t        testing.TB
	srv      *httptest.Server
	backends []*webBackend
	next     atomic.Uint64
	pages    map[string]string

	refuseUpgrades atomic.Bool
	bufferWhole    atomic.Bool
	// dropAnswers forwards each request and waits for its answer, then
	// cuts the client's connection instead of answering: a node that died
	// after doing what was asked, as its client sees it.
	dropAnswers atomic.Bool
}

type webBackend struct {
	url   *url.URL
	rp    *httputil.ReverseProxy
	dead  atomic.Bool
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newWebProxy(t testing.TB, pages map[string]string, nodes ...*testNode) *webProxy {
	p := &webProxy{t: t, pages: pages}
	for _, n := range nodes {
		u, _ := url.Parse(n.base)
		b := &webBackend{url: u, conns: map[net.Conn]struct{}{}}
		tr := &http.Transport{DialContext: b.dial, MaxIdleConnsPerHost: 64}
		b.rp = &httputil.ReverseProxy{
			Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = r.In.Host },
			Transport:     tr,
			FlushInterval: -1,
			ErrorLog:      log.New(io.Discard, "", 0), // cut connections are the point
			ErrorHandler:  func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
		}
		t.Cleanup(tr.CloseIdleConnections)
		p.backends = append(p.backends, b)
	}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	return p
}

func (b *webBackend) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dead.Load() {
		c.Close()
		return nil, net.ErrClosed
	}
	b.conns[c] = struct{}{}
	return &trackedConn{Conn: c, b: b}, nil
}

type trackedConn struct {
	net.Conn
	b    *webBackend
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.b.mu.Lock()
		delete(c.b.conns, c.Conn)
		c.b.mu.Unlock()
	})
	return c.Conn.Close()
}

// kill loses the node behind b: every connection through it is cut and no
// request goes to it again.
func (p *webProxy) kill(n *testNode) {
	for _, b := range p.backends {
		if "http://"+b.url.Host != n.base {
			continue
		}
		b.mu.Lock()
		b.dead.Store(true)
		for c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
	}
}

func (p *webProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if page, ok := p.pages[r.URL.Path]; ok {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
		return
	}
	if p.refuseUpgrades.Load() && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "no WebSockets through this proxy", http.StatusForbidden)
		return
	}
	b := p.pick()
	if b == nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	if p.dropAnswers.Load() {
		b.rp.ServeHTTP(httptest.NewRecorder(), r)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	if p.bufferWhole.Load() {
		rec := httptest.NewRecorder()
		b.rp.ServeHTTP(rec, r) // until the response ends: a stream never does, until its node goes
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	b.rp.ServeHTTP(w, r)
}

// pick is the next live backend, round-robin.
func (p *webProxy) pick() *webBackend {
	for range p.backends {
		b := p.backends[p.next.Add(1)%uint64(len(p.backends))]
		if !b.dead.Load() {
			return b
		}
	}
	return nil
}
