package main

import (
	"flag"
	"fmt"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushcluster/pushcluster/pkg/auth"
)

// benchAuth is what the load tool needs against a node with authentication
// on: a token for its streams and, for a node it starts, the secret. It is
// kept apart from Config so that measuring with authentication stays a
// small addition to the tool.
var benchAuth struct {
	token  string // put in every stream's query as token=
	secret string // passed to a -start-node node as -jwt-secret
}

func addAuthFlags(fs *flag.FlagSet) {
	fs.StringVar(&benchAuth.token, "token", "", "token sent by every SSE and WebSocket client (query parameter token), for a node with authentication on")
	fs.StringVar(&benchAuth.secret, "auth-secret", "", "HS256 secret: a node started by -start-node runs with -jwt-secret set to it, and the clients get a token signed with it (channels and publish: *)")
}

// streamToken returns the token the clients send, minting one from
// -auth-secret when no -token is given.
func streamToken() (string, error) {
	if benchAuth.token != "" || benchAuth.secret == "" {
		return benchAuth.token, nil
	}
	c := auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: "bench", ExpiresAt: jwt.NewNumericDate(time.Now().Add(24 * time.Hour))},
		Channels:         auth.Patterns{"*"}, Publish: auth.Patterns{"*"},
	}
	t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(benchAuth.secret))
	if err != nil {
		return "", fmt.Errorf("bench: failed to sign a token: %w", err)
	}
	benchAuth.token = t
	return t, nil
}

// tokenQuery is the query suffix ("&token=…") of a stream's URL.
func tokenQuery() string {
	t, _ := streamToken()
	if t == "" {
		return ""
	}
	return "&token=" + url.QueryEscape(t)
}

// nodeAuthArgs are the flags a started node gets for authentication.
func nodeAuthArgs() []string {
	if benchAuth.secret == "" {
		return nil
	}
	return []string{"-jwt-secret", benchAuth.secret}
}
