package transport

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"

	"github.com/pushcluster/pushcluster/pkg/protocol"
)

// A session is a client's identity across connections. Its token is a
// secret the client keeps; the client ID is a one-way hash of it, so the ID
// can be shown to anyone (presence, publishers addressing the client) while
// only the holder of the token can connect as that client. Any node derives
// the same ID from the same token: nothing is stored, nothing is looked up.
const sessionBytes = 18

var errBadSession = errors.New("session must be a token from push.welcome or POST /api/session")

// With authentication on, the client ID is derived from the session and
// the user (the token's sub) together: a session presented by another
// user is another client, so knowing someone's session token never gives
// their identity to a different account.

// newSession returns a fresh session token and its client ID for user
// (empty on an open node).
func newSession(user string) (token, client string) {
	var b [sessionBytes]byte
	rand.Read(b[:])
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, clientOf(b[:], user)
}

// parseSession returns the client ID of token for user.
func parseSession(token, user string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != sessionBytes {
		return "", errBadSession
	}
	return clientOf(b, user), nil
}

func clientOf(secret []byte, user string) string {
	in := append([]byte("pushcluster session\x00"), secret...)
	if user != "" {
		in = append(append(in, "\x00user\x00"...), user...)
	}
	h := sha256.Sum256(in)
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

// requestSession returns the session a request's query asks for (the
// session parameter), or a new one, and the client ID it gives user.
func requestSession(q url.Values, user string) (token, client string, err error) {
	token = q.Get("session")
	if token == "" {
		token, client = newSession(user)
		return token, client, nil
	}
	client, err = parseSession(token, user)
	return token, client, err
}

type sessionResponse struct {
	Client  string `json:"client"`
	Session string `json:"session"`
}

// serveSession answers POST /api/session with a new session: a page that
// opens its EventSource with it keeps one identity across every reconnect,
// on any node.
// With authentication on it needs a credential, and the client ID is the
// one the session gives that user.
func (s *Server) serveSession(w http.ResponseWriter, r *http.Request) {
	p, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	token, client := newSession(p.Subject)
	protocol.WriteJSON(w, http.StatusOK, sessionResponse{Client: client, Session: token})
}
