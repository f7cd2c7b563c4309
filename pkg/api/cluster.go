package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

type clusterResponse struct {
	Self  string           `json:"self"`
	Nodes []cluster.Member `json:"nodes"`
	// Auth is "open" when this node lets anyone in, else "required".
	Auth string `json:"auth"`
}

func (s *Server) serveCluster(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	protocol.WriteJSON(w, http.StatusOK, clusterResponse{Self: s.cfg.Node, Nodes: s.p.Cluster.Members(), Auth: s.p.Auth.Mode()})
}

// servePresence answers an API key, or a token that may read the channel.
func (s *Server) servePresence(w http.ResponseWriter, r *http.Request) {
	who, ok := s.p.Auth.Require(w, r)
	if !ok {
		return
	}
	channel := r.URL.Query().Get("channel")
	if err := protocol.ValidateChannel(channel); err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidChannel, err)
		return
	}
	if !who.CanRead(channel) {
		s.p.Auth.Forbid(w, auth.ErrCannotRead(channel))
		return
	}
	if r.URL.Query().Get("count") == "1" {
		clients, users, a := s.p.Cluster.PresenceCount(r.Context(), channel)
		protocol.WriteJSON(w, http.StatusOK, presenceCountResponse{Channel: channel, Clients: clients, Users: users,
			Partial: a.Partial, Missing: a.Missing})
		return
	}
	clients, a := s.p.Cluster.Presence(r.Context(), channel)
	b := append(answerBuf(64+clients.Size()), `{"channel":`...)
	b = protocol.AppendJSONString(b, channel)
	b = append(b, `,"clients":`...)
	writeClients(w, b, clients, "", a)
}

// writeClients finishes an answer whose opening, up to its "clients"
// member, is b: the list as it came, the page's next if any, whether the
// answer is partial and which members are missing. It is written by hand
// because encoding/json would scan a list of 10,000 clients again to
// check what it was handed (see cluster.ClientList).
func writeClients(w http.ResponseWriter, b []byte, clients cluster.ClientList, next string, a cluster.Answer) {
	b = clients.AppendJSON(b)
	if next != "" {
		b = append(b, `,"next":`...)
		b = protocol.AppendJSONString(b, next)
	}
	b = append(b, `,"partial":`...)
	b = strconv.AppendBool(b, a.Partial)
	missing, _ := json.Marshal(a.Missing)
	b = append(b, `,"missing":`...)
	b = append(b, missing...)
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	if cap(b) <= maxPooledAnswer {
		answers.Put(&b)
	}
}

// answers holds the buffers of list answers between requests: a list of
// 10,000 clients is a megabyte, which a busy status page would otherwise
// allocate, and the collector sweep, every few seconds.
var answers sync.Pool

const maxPooledAnswer = 4 << 20

// answerBuf returns an empty buffer of at least n bytes.
func answerBuf(n int) []byte {
	if p, ok := answers.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]byte, 0, n)
}

// presenceCountResponse answers GET /api/presence?channel=a&count=1: how
// many distinct clients and users are on the channel, cluster-wide.
type presenceCountResponse struct {
	Channel string   `json:"channel"`
	Clients int      `json:"clients"`
	Users   int      `json:"users"`
	Partial bool     `json:"partial"`
	Missing []string `json:"missing"`
}

// serveClients answers GET /api/clients?after=<id>&limit=N: connected
// clients of the whole cluster in ID order, a page at a time.
func (s *Server) serveClients(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	q := r.URL.Query()
	limit := defaultClientsLimit
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxClientsLimit {
			protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidLimit, fmt.Errorf("limit must be a number from 1 to %d", maxClientsLimit))
			return
		}
		limit = n
	}
	clients, more, a := s.p.Cluster.Clients(r.Context(), q.Get("after"), limit)
	next := "" // the after of the next page, when there is one
	if more {
		next = clients.LastID()
	}
	writeClients(w, append(answerBuf(64+clients.Size()), `{"clients":`...), clients, next, a)
}

type disconnectRequest struct {
	Client string `json:"client"`
}

type disconnectResponse struct {
	Client       string   `json:"client"`
	Disconnected int      `json:"disconnected"`
	Nodes        []string `json:"nodes"`
}

// serveDisconnect answers POST /api/disconnect {"client":"<id>"}.
func (s *Server) serveDisconnect(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	if ct := r.Header.Get("Content-Type"); !protocol.IsJSONContent(ct) {
		protocol.WriteError(w, http.StatusUnsupportedMediaType, protocol.CodeMediaType,
			fmt.Errorf("Content-Type %q: send application/json", ct))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
	if err != nil {
		protocol.WriteError(w, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge, errors.New("request body too large"))
		return
	}
	var req disconnectRequest
	if err := protocol.DecodeJSON(body, &req); err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeBadJSON, err)
		return
	}
	if req.Client == "" || len(req.Client) > 64 {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidClient, errors.New("client is required, up to 64 bytes"))
		return
	}
	d, err := s.p.Cluster.Disconnect(r.Context(), req.Client)
	if errors.Is(err, cluster.ErrNotFound) || d.Connections == 0 {
		protocol.WriteError(w, http.StatusNotFound, protocol.CodeNotFound, fmt.Errorf("no node holds client %q", req.Client))
		return
	}
	protocol.WriteJSON(w, http.StatusOK, disconnectResponse{Client: req.Client, Disconnected: d.Connections, Nodes: d.Nodes})
}

// admin authenticates r and requires an API key (or an open node).
func (s *Server) admin(w http.ResponseWriter, r *http.Request) bool {
	p, ok := s.p.Auth.Require(w, r)
	if ok && !p.Admin() {
		s.p.Auth.Forbid(w, errors.New("this API needs an API key"))
		return false
	}
	return ok
}
