package api

import (
	"errors"
	"net/http"

	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

type ticketResponse struct {
	Ticket string `json:"ticket"`
	// ExpiresIn is the ticket's lifetime in seconds.
	ExpiresIn float64 `json:"expiresIn"`
}

// serveTicket answers POST /api/ticket: a token (in the header or cookie)
// buys a short-lived single-use ticket that a page puts in a URL instead
// of the token (?ticket=…), redeemable on any node.
func (s *Server) serveTicket(w http.ResponseWriter, r *http.Request) {
	p, ok := s.p.Auth.Require(w, r)
	if !ok {
		return
	}
	if p.Subject == "" {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidToken, errors.New("a ticket carries a token's claims: authenticate with a token"))
		return
	}
	t, ttl, err := s.p.Auth.IssueTicket(r.Context(), p)
	if err != nil {
		status, code := auth.Code(err)
		protocol.WriteError(w, status, code, err)
		return
	}
	protocol.WriteJSON(w, http.StatusOK, ticketResponse{Ticket: t, ExpiresIn: ttl.Seconds()})
}

type sessionResponse struct {
	Client  string `json:"client"`
	Session string `json:"session"`
}

// serveSession answers POST /api/session with a new session: a page that
// opens its EventSource with it keeps one identity across every reconnect,
// on any node. With authentication on it needs a credential, and the
// client ID is the one the session gives that user.
func (s *Server) serveSession(w http.ResponseWriter, r *http.Request) {
	p, ok := s.p.Auth.Require(w, r)
	if !ok {
		return
	}
	token, client := auth.NewSession(p.Subject)
	protocol.WriteJSON(w, http.StatusOK, sessionResponse{Client: client, Session: token})
}
