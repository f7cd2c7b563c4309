package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

type historyEntry struct {
	ID    string `json:"id"`
	Event string `json:"event,omitempty"`
	Data  string `json:"data"`
}

type historyResponse struct {
	Channel string         `json:"channel"`
	Entries []historyEntry `json:"entries"`
	// Last is the position to pass as since next time.
	Last string        `json:"last"`
	More bool          `json:"more"`
	Gap  *protocol.Gap `json:"gap,omitempty"`
}

// serveHistory answers GET /api/history?channel=a&since=<id>&limit=N: the
// entries after since, oldest first, or without since the newest limit
// entries. Entries addressed to one client are left out.
func (s *Server) serveHistory(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r)
	if !ok {
		return
	}
	who, ok := s.p.Auth.Require(w, r)
	if !ok {
		return
	}
	channel := q.Get("channel")
	if err := protocol.ValidateChannel(channel); err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidChannel, err)
		return
	}
	if !who.CanRead(channel) {
		s.p.Auth.Forbid(w, auth.ErrCannotRead(channel))
		return
	}
	limit, err := historyLimit(q.Get("limit"))
	if err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidLimit, err)
		return
	}
	since, err := s.historyStart(r.Context(), channel, q.Get("since"), limit)
	if err != nil {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidID, err)
		return
	}
	b, err := s.p.Store.ReadAfter(r.Context(), channel, since, limit)
	if errors.Is(err, store.ErrUnreadable) {
		protocol.WriteError(w, http.StatusConflict, protocol.CodeUnreadable, err)
		return
	}
	if err != nil {
		protocol.WriteError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, errors.New("the store is unavailable"))
		return
	}
	protocol.WriteJSON(w, http.StatusOK, historyOf(channel, since, &b))
}

func historyOf(channel string, since protocol.ID, b *store.Batch) historyResponse {
	resp := historyResponse{Channel: channel, Entries: []historyEntry{}, Last: b.Last(since).String(), More: b.Full}
	for _, e := range b.Entries {
		if e.To == "" {
			resp.Entries = append(resp.Entries, historyEntry{ID: e.ID.String(), Event: e.Event, Data: e.Data})
		}
	}
	if g := b.Gap; g != nil {
		resp.Gap = &protocol.Gap{Channels: []string{channel}, Reason: g.Reason, From: g.From.String(), Resume: g.Resume.String()}
	}
	return resp
}

func historyLimit(raw string) (int, error) {
	if raw == "" {
		return defaultHistoryLimit, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxHistoryLimit {
		return 0, fmt.Errorf("limit must be a number from 1 to %d", maxHistoryLimit)
	}
	return n, nil
}

// historyStart parses since; without it, it finds the position just before
// the newest limit entries.
func (s *Server) historyStart(ctx context.Context, channel, raw string, limit int) (protocol.ID, error) {
	if raw != "" {
		return protocol.ParseID(raw)
	}
	return s.p.Store.Before(ctx, channel, limit)
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	protocol.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": s.cfg.Node})
}

type readiness struct {
	Ready    bool   `json:"ready"`
	Node     string `json:"node"`
	Redis    string `json:"redis"`
	Delivery string `json:"delivery"`
	Draining bool   `json:"draining"`
	// Shards is each shard's wake-up path, with what to change where
	// notifications cannot be turned on.
	Shards []store.ShardStatus `json:"shards"`
	// Auth is "open" when the node lets anyone in, else "required".
	Auth string `json:"auth"`
}

// serveReady answers 200 when Redis answers and live delivery works on every
// shard: its doorbell is proven ("notify") or the node polls it because its
// notifications are off ("poll", with the setting to change); 503 while a
// shard's path is stalled or not yet proven, and while draining.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	st := readiness{Ready: true, Node: s.cfg.Node, Redis: "ok", Delivery: store.DeliveryNotify, Draining: s.p.Draining(), Auth: s.p.Auth.Mode()}
	if st.Draining {
		st.Ready = false
	}
	if err := s.p.Store.Ping(ctx); err != nil {
		st.Ready, st.Redis = false, err.Error()
	}
	st.Shards = s.p.Delivery.Shards()
	st.Delivery = worstDelivery(st.Shards)
	if !s.p.Delivery.Ready() {
		st.Ready = false
		if st.Delivery == store.DeliveryNotify || st.Delivery == store.DeliveryPoll {
			st.Delivery = store.DeliveryStalled
		}
	}
	status := http.StatusOK
	if !st.Ready {
		status = http.StatusServiceUnavailable
	}
	protocol.WriteJSON(w, status, st)
}

// worstDelivery sums up the shards: stalled before starting before poll
// before notify.
func worstDelivery(shards []store.ShardStatus) string {
	rank := map[string]int{store.DeliveryNotify: 0, store.DeliveryPoll: 1, store.DeliveryStarting: 2, store.DeliveryStalled: 3}
	worst := store.DeliveryStarting
	if len(shards) > 0 {
		worst = store.DeliveryNotify
	}
	for _, sh := range shards {
		if rank[sh.Delivery] > rank[worst] {
			worst = sh.Delivery
		}
	}
	return worst
}
