package main

import (
	"flag"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushcluster/pushcluster/pkg/auth"
)

// benchAuth is what the load tool needs against a node with authentication
// on: a token for its streams and, for a node it starts, the secret. It is
// kept apart from Config so that measuring with authentication stays a
// small addition to the tool.
var (
	benchAuthMu sync.Mutex
	benchAuth   authFlags
)

type authFlags struct {
	token  string // put in every stream's query as token=
	secret string // passed to a -start-node node as -jwt-secret
	// each: every connection gets a token of its own, as users do, rather
	// than one the node verifies once and shares.
	each bool
}

// minted numbers the tokens of -auth-each, one user each.
var minted atomic.Int64

// addAuthFlags binds the flags to values of their own; apply makes them the
// tool's once the flags are parsed (the clients read them concurrently).
func addAuthFlags(fs *flag.FlagSet) (apply func()) {
	var f authFlags
	fs.StringVar(&f.token, "token", "", "token sent by every SSE and WebSocket client (query parameter token), for a node with authentication on")
	fs.StringVar(&f.secret, "auth-secret", "", "HS256 secret: a node started by -start-node runs with -jwt-secret set to it, and the clients get a token signed with it (channels and publish: *)")
	fs.BoolVar(&f.each, "auth-each", false, "with -auth-secret: every connection gets a token of its own, for a user of its own, instead of one token for all")
	return func() {
		benchAuthMu.Lock()
		defer benchAuthMu.Unlock()
		benchAuth = f
	}
}

// streamToken returns the token the clients send, minting one from
// -auth-secret when no -token is given.
func streamToken() (string, error) {
	benchAuthMu.Lock()
	defer benchAuthMu.Unlock()
	if benchAuth.secret != "" && benchAuth.each {
		return mintToken(benchAuth.secret, fmt.Sprintf("bench-%d", minted.Add(1)))
	}
	if benchAuth.token != "" || benchAuth.secret == "" {
		return benchAuth.token, nil
	}
	t, err := mintToken(benchAuth.secret, "bench")
	benchAuth.token = t
	return t, err
}

// mintToken signs a token for user that may read and publish anywhere.
func mintToken(secret, user string) (string, error) {
	c := auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: user, ExpiresAt: jwt.NewNumericDate(time.Now().Add(24 * time.Hour))},
		Channels:         auth.Patterns{"*"}, Publish: auth.Patterns{"*"},
	}
	t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("bench: failed to sign a token: %w", err)
	}
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
	benchAuthMu.Lock()
	defer benchAuthMu.Unlock()
	if benchAuth.secret == "" {
		return nil
	}
	return []string{"-jwt-secret", benchAuth.secret}
}
