package transport

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
)

// A session is a client's identity across connections. Its token is a
// secret the client keeps; the client ID is a one-way hash of it, so the ID
// can be shown to anyone (presence, publishers addressing the client) while
// only the holder of the token can connect as that client. Any node derives
// the same ID from the same token: nothing is stored, nothing is looked up.
const sessionBytes = 18

var errBadSession = errors.New("session must be a token from push.welcome or POST /api/session")

// newSession returns a fresh session token and its client ID.
func newSession() (token, client string) {
	var b [sessionBytes]byte
	rand.Read(b[:])
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, clientOf(b[:])
}

// parseSession returns the client ID of token.
func parseSession(token string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != sessionBytes {
		return "", errBadSession
	}
	return clientOf(b), nil
}

func clientOf(secret []byte) string {
	h := sha256.Sum256(append([]byte("pushcluster session\x00"), secret...))
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

// requestSession returns the session a request's query asks for (the
// session parameter), or a new one.
func requestSession(q url.Values) (token, client string, err error) {
	token = q.Get("session")
	if token == "" {
		token, client = newSession()
		return token, client, nil
	}
	client, err = parseSession(token)
	return token, client, err
}

type sessionResponse struct {
	Client  string `json:"client"`
	Session string `json:"session"`
}

// serveSession answers POST /api/session with a new session: a page that
// opens its EventSource with it keeps one identity across every reconnect,
// on any node.
func (s *Server) serveSession(w http.ResponseWriter, r *http.Request) {
	token, client := newSession()
	writeJSON(w, http.StatusOK, sessionResponse{Client: client, Session: token})
}
