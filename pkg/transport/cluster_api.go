package transport

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// Cluster answers questions about every node of the cluster. Its methods
// are safe for concurrent use and return within their own deadline.
// *cluster.Cluster implements it.
type Cluster interface {
	Members() []cluster.Member
	Presence(ctx context.Context, channel string) ([]cluster.Client, cluster.Answer)
	Clients(ctx context.Context, after string, limit int) ([]cluster.Client, bool, cluster.Answer)
	Deliver(ctx context.Context, client string, m cluster.Direct) (cluster.Delivery, error)
	Disconnect(ctx context.Context, client string) (cluster.Delivery, error)
}

var _ Cluster = (*cluster.Cluster)(nil)

// UseCluster makes the server answer cluster questions through c rather
// than from this node alone. Call it before serving.
func (s *Server) UseCluster(c Cluster) { s.cluster = c }

// Client list limits for GET /api/clients.
const (
	defaultClientsLimit = 1000
	maxClientsLimit     = 10_000
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
	protocol.WriteJSON(w, http.StatusOK, clusterResponse{Self: s.cfg.Node, Nodes: s.cluster.Members(), Auth: s.cfg.Auth.Mode()})
}

type presenceResponse struct {
	Channel string           `json:"channel"`
	Clients []cluster.Client `json:"clients"`
	Partial bool             `json:"partial"`
	Missing []string         `json:"missing"`
}

// servePresence answers an API key, or a token that may read the channel.
func (s *Server) servePresence(w http.ResponseWriter, r *http.Request) {
	who, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	channel := r.URL.Query().Get("channel")
	if err := protocol.ValidateChannel(channel); err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidChannel, err)
		return
	}
	if !who.CanRead(channel) {
		s.forbid(w, errCannotRead(channel))
		return
	}
	clients, a := s.cluster.Presence(r.Context(), channel)
	if clients == nil {
		clients = []cluster.Client{}
	}
	protocol.WriteJSON(w, http.StatusOK, presenceResponse{Channel: channel, Clients: clients, Partial: a.Partial, Missing: a.Missing})
}

type clientsResponse struct {
	Clients []cluster.Client `json:"clients"`
	// Next, when set, is the after of the next page.
	Next    string   `json:"next,omitempty"`
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
	clients, more, a := s.cluster.Clients(r.Context(), q.Get("after"), limit)
	resp := clientsResponse{Clients: clients, Partial: a.Partial, Missing: a.Missing}
	if resp.Clients == nil {
		resp.Clients = []cluster.Client{}
	}
	if more {
		resp.Next = clients[len(clients)-1].ID
	}
	protocol.WriteJSON(w, http.StatusOK, resp)
}

func (s *Server) servePublishDirect(w http.ResponseWriter, r *http.Request, p protocol.PublishRequest) {
	res, perr := s.publishDirect(r.Context(), p)
	if perr != nil {
		protocol.WriteError(w, perr.status, perr.code, perr.err)
		return
	}
	s.stats.pubHTTP.Add(1)
	protocol.WriteJSON(w, http.StatusOK, res)
}

// publishDirect sends a message to one client on whichever node holds it.
func (s *Server) publishDirect(ctx context.Context, p protocol.PublishRequest) (protocol.DirectAnswer, *publishError) {
	switch {
	case p.Channel != "":
		return protocol.DirectAnswer{}, &publishError{http.StatusBadRequest, protocol.CodeInvalidClient, errors.New("give channel or client, not both")}
	case p.To != "" || p.Exclude != "":
		return protocol.DirectAnswer{}, &publishError{http.StatusBadRequest, protocol.CodeInvalidClient, errors.New("to and exclude go with a channel")}
	case len(p.Client) > 64:
		return protocol.DirectAnswer{}, &publishError{http.StatusBadRequest, protocol.CodeInvalidClient, errors.New("client ID longer than 64 bytes")}
	case p.Data == "":
		return protocol.DirectAnswer{}, &publishError{http.StatusBadRequest, protocol.CodeInvalidData, errors.New("a message to one client needs data")}
	case len(p.Data) > s.cfg.MaxPayload:
		return protocol.DirectAnswer{}, &publishError{http.StatusRequestEntityTooLarge, protocol.CodeTooLarge,
			fmt.Errorf("data is %d bytes, more than %d", len(p.Data), s.cfg.MaxPayload)}
	case !utf8.ValidString(p.Data):
		return protocol.DirectAnswer{}, &publishError{http.StatusBadRequest, protocol.CodeBadJSON, errors.New("data is not UTF-8")}
	}
	if err := protocol.ValidateEvent(p.Event); err != nil {
		return protocol.DirectAnswer{}, &publishError{http.StatusBadRequest, protocol.CodeInvalidEvent, err}
	}
	m := cluster.Direct{ID: newDirectID(), Event: p.Event, Data: p.Data}
	d, err := s.cluster.Deliver(ctx, p.Client, m)
	res := protocol.DirectAnswer{ID: m.ID, Delivered: d.Connections > 0, Connections: d.Connections,
		Nodes: d.Nodes, Partial: d.Partial, Missing: d.Missing}
	if res.Nodes == nil {
		res.Nodes = []string{}
	}
	if res.Missing == nil {
		res.Missing = []string{}
	}
	switch {
	case errors.Is(err, cluster.ErrNotFound):
		return res, &publishError{http.StatusNotFound, protocol.CodeNotFound, fmt.Errorf("no node holds client %q", p.Client)}
	case !res.Delivered && res.Partial:
		return res, &publishError{http.StatusServiceUnavailable, protocol.CodePartial,
			fmt.Errorf("client %q not found on the nodes that answered; %v did not", p.Client, res.Missing)}
	}
	return res, nil
}

// newDirectID names a message to one client, so its sender and receiver
// can match it: it is in no stream, so it has no entry ID.
func newDirectID() string {
	var b [9]byte
	rand.Read(b[:])
	return "d-" + base64.RawURLEncoding.EncodeToString(b[:])
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
	d, err := s.cluster.Disconnect(r.Context(), req.Client)
	if errors.Is(err, cluster.ErrNotFound) || d.Connections == 0 {
		protocol.WriteError(w, http.StatusNotFound, protocol.CodeNotFound, fmt.Errorf("no node holds client %q", req.Client))
		return
	}
	protocol.WriteJSON(w, http.StatusOK, disconnectResponse{Client: req.Client, Disconnected: d.Connections, Nodes: d.Nodes})
}
