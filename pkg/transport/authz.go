package transport

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/pushcluster/pushcluster/pkg/auth"
	"github.com/pushcluster/pushcluster/pkg/limit"
	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// Authenticator tells who a request comes from. Its methods are safe for
// concurrent use; they block only on Redis (tickets) or on fetching a
// rotated key set, within ctx, and only when a connection or API call
// begins, never on the delivery path. *auth.Auth implements it.
type Authenticator interface {
	// Authenticate returns the principal of r: from its Authorization
	// header, ticket or token query parameter, or cookie. An error wraps
	// one of auth's sentinels.
	Authenticate(ctx context.Context, r *http.Request) (*auth.Principal, error)
	// Verify checks a token sent over an open connection.
	Verify(ctx context.Context, token string) (*auth.Principal, error)
	// IssueTicket makes a single-use ticket carrying p's claims.
	IssueTicket(ctx context.Context, p *auth.Principal) (string, time.Duration, error)
	// Mode is "open" when nothing is configured, else "required".
	Mode() string
}

var _ Authenticator = (*auth.Auth)(nil)

// openAuth lets everyone in: a node with no authentication configured.
type openAuth struct{}

func (openAuth) Authenticate(context.Context, *http.Request) (*auth.Principal, error) {
	return auth.Open, nil
}
func (openAuth) Verify(context.Context, string) (*auth.Principal, error) {
	return nil, auth.ErrInvalidToken
}
func (openAuth) IssueTicket(context.Context, *auth.Principal) (string, time.Duration, error) {
	return "", 0, auth.ErrInvalidToken
}
func (openAuth) Mode() string { return "open" }

// authCode maps an authentication failure to its status and code.
func authCode(err error) (int, string) {
	switch {
	case errors.Is(err, auth.ErrUnavailable):
		return http.StatusServiceUnavailable, protocol.CodeUnavailable
	case errors.Is(err, auth.ErrTokenExpired):
		return http.StatusUnauthorized, protocol.CodeTokenExpired
	case errors.Is(err, auth.ErrInvalidTicket):
		return http.StatusUnauthorized, protocol.CodeInvalidTicket
	case errors.Is(err, auth.ErrNoCredentials):
		return http.StatusUnauthorized, protocol.CodeUnauthorized
	}
	return http.StatusUnauthorized, protocol.CodeInvalidToken
}

// authenticate answers 401 (or 503 when tickets cannot be read) and
// reports false when r carries no valid credential. The log line names the
// path and a redacted query: a token or ticket never reaches the logs.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*auth.Principal, bool) {
	p, err := s.cfg.Auth.Authenticate(r.Context(), r)
	if err == nil {
		return p, true
	}
	status, code := authCode(err)
	s.stats.authFailed.Add(1)
	s.cfg.Logger.Debug("refused a request: not authenticated", "path", r.URL.Path,
		"query", auth.RedactQuery(r.URL.RawQuery), "code", code)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pushcluster"`)
	}
	protocol.WriteError(w, status, code, err)
	return nil, false
}

// forbid answers 403: the credential is valid but does not allow this.
func (s *Server) forbid(w http.ResponseWriter, err error) {
	s.stats.forbidden.Add(1)
	protocol.WriteError(w, http.StatusForbidden, protocol.CodeForbidden, err)
}

// admin authenticates r and requires an API key (or an open node).
func (s *Server) admin(w http.ResponseWriter, r *http.Request) bool {
	p, ok := s.authenticate(w, r)
	if ok && !p.Admin() {
		s.forbid(w, errors.New("this API needs an API key"))
		return false
	}
	return ok
}

func errCannotRead(channel string) error {
	return fmt.Errorf("the token does not allow reading channel %q", channel)
}

func errCannotPublish(channel string) error {
	return fmt.Errorf("the token does not allow publishing to channel %q", channel)
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

// errTokenExpired ends a connection whose token expired.
var errTokenExpired = errors.New("transport: token expired: authenticate again")

type ticketResponse struct {
	Ticket string `json:"ticket"`
	// ExpiresIn is the ticket's lifetime in seconds.
	ExpiresIn float64 `json:"expiresIn"`
}

// serveTicket answers POST /api/ticket: a token (in the header or cookie)
// buys a short-lived single-use ticket that a page puts in a URL instead
// of the token (?ticket=…), redeemable on any node.
func (s *Server) serveTicket(w http.ResponseWriter, r *http.Request) {
	p, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if p.Subject == "" {
		protocol.WriteError(w, http.StatusBadRequest, protocol.CodeInvalidToken, errors.New("a ticket carries a token's claims: authenticate with a token"))
		return
	}
	t, ttl, err := s.cfg.Auth.IssueTicket(r.Context(), p)
	if err != nil {
		status, code := authCode(err)
		protocol.WriteError(w, status, code, err)
		return
	}
	protocol.WriteJSON(w, http.StatusOK, ticketResponse{Ticket: t, ExpiresIn: ttl.Seconds()})
}
