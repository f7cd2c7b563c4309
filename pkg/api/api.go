// Package api serves the node's HTTP API and pages: publishing, history,
// sessions and tickets, the cluster's questions (members, presence,
// clients, disconnects), health and readiness, the demo and status pages,
// and CORS for all of it. The transports (pkg/transport) serve the
// streams.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pushcluster/pushcluster/pkg/api/clientlib"
	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/limit"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/publish"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// DefaultKeyPublishRate is what one API key, user or (on an open node)
// address may publish per second over HTTP (bursts of twice as many).
const DefaultKeyPublishRate = 2000

// History and client list limits.
const (
	defaultHistoryLimit = 100
	maxHistoryLimit     = 1000
	defaultClientsLimit = 1000
	maxClientsLimit     = 10_000
)

// Config tunes the API. Every field's zero value means the default named
// on it.
type Config struct {
	// Node is this node's name, in readiness and /api/cluster.
	Node string
	// MaxPayload is the largest data a publish may carry; a body may be
	// twice as large and 4 KiB more. Zero means publish.DefaultMaxPayload.
	MaxPayload int
	// KeyPublishRate bounds HTTP publishes per second per API key, user or,
	// on an open node, client address. Zero means DefaultKeyPublishRate;
	// negative, no bound.
	KeyPublishRate float64
	// TrustedProxies are the peers whose X-Forwarded-For is believed for a
	// client's address. Nil means none.
	TrustedProxies []netip.Prefix
	// StoreCLI is what redis-cli needs to reach the store ("-p 41234" for
	// an embedded one), shown in the demo page's XADD line. Empty means
	// nothing: a Redis on localhost:6379.
	StoreCLI string
	// Prefix is the stream key prefix, shown in the demo page's XADD line.
	// Empty means store.DefaultPrefix.
	Prefix string
}

// Cluster answers questions about every node of the cluster. Its methods
// are safe for concurrent use and return within their own deadline.
// *cluster.Cluster implements it.
type Cluster interface {
	Members() []cluster.Member
	Presence(ctx context.Context, channel string) (cluster.ClientList, cluster.Answer)
	PresenceCount(ctx context.Context, channel string) (clients, users int, a cluster.Answer)
	Clients(ctx context.Context, after string, limit int) (cluster.ClientList, bool, cluster.Answer)
	Disconnect(ctx context.Context, client string) (cluster.Delivery, error)
}

var _ Cluster = (*cluster.Cluster)(nil)

// Readiness is what /readyz reports beyond Redis answering a PING. Its
// methods must not block. The hub and the registry implement it between
// them; Ready takes one of each.
type Readiness interface {
	// Ready reports whether live delivery works.
	Ready() bool
	// Shards reports each shard's wake-up path.
	Shards() []store.ShardStatus
}

// Parts are what the API works with, built by whoever builds the node.
type Parts struct {
	Store     *store.Store       // history, and readiness's PING. Required.
	Publisher *publish.Publisher // Required.
	Auth      *auth.Auth         // Required.
	Cluster   Cluster            // Required.
	Delivery  Readiness          // Required.
	Draining  func() bool        // Required: the node is draining.
	Logger    *slog.Logger       // Nil means discard.
}

// Server serves the API and the pages.
type Server struct {
	cfg     Config
	p       Parts
	mux     *http.ServeMux
	keyRate *limit.Keyed
	demo    []byte
	stats   struct{ pubHTTP, limitedHTTP atomic.Uint64 }
}

// New returns the API of parts, tuned by cfg.
func New(parts Parts, cfg Config) (*Server, error) {
	if parts.Store == nil || parts.Publisher == nil || parts.Auth == nil || parts.Cluster == nil || parts.Delivery == nil || parts.Draining == nil {
		return nil, errors.New("api: a store, a publisher, an auth, a cluster, readiness and draining are required")
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = publish.DefaultMaxPayload
	}
	if cfg.KeyPublishRate == 0 {
		cfg.KeyPublishRate = DefaultKeyPublishRate
	}
	if cfg.Prefix == "" {
		cfg.Prefix = store.DefaultPrefix
	}
	if parts.Logger == nil {
		parts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, p: parts, keyRate: limit.NewKeyed(cfg.KeyPublishRate, int(2*cfg.KeyPublishRate))}
	s.demo = demo(cfg.Prefix, cfg.StoreCLI)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /api/publish", s.servePublish)
	s.mux.HandleFunc("GET /api/history", s.serveHistory)
	s.mux.HandleFunc("POST /api/session", s.serveSession)
	s.mux.HandleFunc("POST /api/ticket", s.serveTicket)
	s.mux.HandleFunc("POST /api/disconnect", s.serveDisconnect)
	s.mux.HandleFunc("GET /api/cluster", s.serveCluster)
	s.mux.HandleFunc("GET /api/presence", s.servePresence)
	s.mux.HandleFunc("GET /api/clients", s.serveClients)
	s.mux.HandleFunc("GET /status", s.serveStatus)
	s.mux.HandleFunc("GET /healthz", s.serveHealth)
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	s.mux.HandleFunc("GET /{$}", s.serveDemo)
	for path, f := range clientlib.Files { // the browser library
		s.mux.HandleFunc("GET "+path, f.Serve)
	}
	return s, nil
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler { return s.mux }

// Stats are the API's counters.
type Stats struct {
	// PublishesHTTP counts publishes through POST /api/publish.
	PublishesHTTP uint64
	// RateLimitedHTTP counts HTTP publishes refused over their rate.
	RateLimitedHTTP uint64
}

// Stats returns the API's counters.
func (s *Server) Stats() Stats {
	return Stats{PublishesHTTP: s.stats.pubHTTP.Load(), RateLimitedHTTP: s.stats.limitedHTTP.Load()}
}

func (s *Server) servePublish(w http.ResponseWriter, r *http.Request) {
	who, ok := s.p.Auth.Require(w, r)
	if !ok {
		return
	}
	if ct := r.Header.Get("Content-Type"); !protocol.IsJSONContent(ct) {
		protocol.WriteError(w, http.StatusUnsupportedMediaType, protocol.CodeMediaType,
			fmt.Errorf("Content-Type %q: send application/json", ct))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(2*s.cfg.MaxPayload+4096)))
	if err != nil {
		protocol.WriteError(w, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge, errors.New("request body too large"))
		return
	}
	p, err := protocol.DecodePublish(body)
	if errors.Is(err, protocol.ErrEmptyClient) {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidClient, err)
		return
	}
	if err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeBadJSON, err)
		return
	}
	if !idempotencyKey(w, r, &p) {
		return
	}
	switch {
	case p.Client != "" && !who.CanPublishDirect():
		s.p.Auth.Forbid(w, errors.New(`publishing to one client needs an API key or a publish claim of "*"`))
		return
	case p.Client == "" && !who.CanPublish(p.Channel):
		s.p.Auth.Forbid(w, auth.ErrCannotPublish(p.Channel))
		return
	case !s.allowHTTPPublish(w, r, who):
		return
	case p.Client != "":
		res, perr := s.p.Publisher.Direct(r.Context(), p)
		if perr != nil {
			protocol.WriteError(w, perr.Status, perr.Code, perr.Err)
			return
		}
		s.stats.pubHTTP.Add(1)
		protocol.WriteJSON(w, http.StatusOK, res)
		return
	}
	res, perr := s.p.Publisher.Publish(r.Context(), p)
	if perr != nil {
		protocol.WriteError(w, perr.Status, perr.Code, perr.Err)
		return
	}
	s.stats.pubHTTP.Add(1)
	protocol.WriteJSON(w, http.StatusOK, res)
}

// idempotencyKey takes the publish's idempotency key from the
// Idempotency-Key header when the body has none, and checks it; a body and
// a header that disagree are refused.
func idempotencyKey(w http.ResponseWriter, r *http.Request, p *protocol.PublishRequest) bool {
	h := r.Header.Get("Idempotency-Key")
	switch {
	case h != "" && p.IdempotencyKey != "" && h != p.IdempotencyKey:
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidKey, errors.New("the Idempotency-Key header and the body's idempotency_key differ"))
		return false
	case h != "":
		p.IdempotencyKey = h
	}
	if err := protocol.ValidateIdempotencyKey(p.IdempotencyKey); err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidKey, err)
		return false
	}
	return true
}

// allowHTTPPublish takes one publish from the credential's (or, on an open
// node, the address's) budget, or answers 429 with Retry-After.
func (s *Server) allowHTTPPublish(w http.ResponseWriter, r *http.Request, p *auth.Principal) bool {
	key := p.RateKey()
	if key == "" {
		key = "ip:" + limit.ClientAddr(r, s.cfg.TrustedProxies).String()
	}
	ok, wait := s.keyRate.Allow(key)
	if ok {
		return true
	}
	s.stats.limitedHTTP.Add(1)
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	protocol.WriteError(w, http.StatusTooManyRequests, protocol.CodeRateLimited, fmt.Errorf("too many publishes: retry in %v", wait.Round(time.Millisecond)))
	return false
}

// query parses the request's query, telling the client what does not
// parse (r.URL.Query drops it, which would be answered as a missing
// parameter).
func query(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidQuery, fmt.Errorf("malformed query: %w", err))
		return nil, false
	}
	return q, true
}
