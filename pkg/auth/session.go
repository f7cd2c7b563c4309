package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// A session is a client's identity across connections. Its token is a
// secret the client keeps; the client ID is a one-way hash of it, so the ID
// can be shown to anyone (presence, publishers addressing the client) while
// only the holder of the token can connect as that client. Any node derives
// the same ID from the same token: nothing is stored, nothing is looked up.
//
// With authentication on, the client ID is derived from the session and
// the user (the token's sub) together: a session presented by another
// user is another client, so knowing someone's session token never gives
// their identity to a different account.
const sessionBytes = 18

// ErrBadSession refuses a session token that is not one the node made.
var ErrBadSession = errors.New("session must be a token from push.welcome or POST /api/session")

// NewSession returns a fresh session token and its client ID for user
// (empty on an open node).
func NewSession(user string) (token, client string) {
	var b [sessionBytes]byte
	rand.Read(b[:])
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, clientOf(b[:], user)
}

// SessionClient returns the client ID that token gives user.
func SessionClient(token, user string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != sessionBytes {
		return "", ErrBadSession
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
