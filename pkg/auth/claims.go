package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims is what a token asserts, beyond the registered claims jwt checks
// (exp, nbf, iat, aud, iss): sub is the user ID, channels what the user
// may read and publish what it may publish to (see Patterns).
type Claims struct {
	jwt.RegisteredClaims
	Channels Patterns `json:"channels,omitempty"`
	Publish  Patterns `json:"publish,omitempty"`
}

// principal turns verified claims into a Principal.
func (c *Claims) principal(via string) *Principal {
	p := &Principal{Subject: c.Subject, Channels: c.Channels, Publish: c.Publish, Via: via}
	if c.ExpiresAt != nil {
		p.Expires = c.ExpiresAt.Time
	}
	return p
}

// ticketClaims is what a ticket stores in Redis: the claims of the token
// it was issued for, already verified. The token itself is not kept.
type ticketClaims struct {
	Subject  string   `json:"sub"`
	Channels Patterns `json:"channels,omitempty"`
	Publish  Patterns `json:"publish,omitempty"`
	Expires  int64    `json:"exp,omitempty"` // Unix milliseconds; 0: never
}

func encodeTicket(p *Principal) []byte {
	tc := ticketClaims{Subject: p.Subject, Channels: p.Channels, Publish: p.Publish}
	if !p.Expires.IsZero() {
		tc.Expires = p.Expires.UnixMilli()
	}
	b, _ := json.Marshal(tc)
	return b
}

// maxTicketBytes bounds a stored ticket; what Redis holds is trusted no
// more than a request (anyone who can write to it could plant one).
const maxTicketBytes = 64 << 10

var errBadTicketData = errors.New("auth: stored ticket is not valid")

// decodeTicket parses a ticket's stored claims.
func decodeTicket(b []byte) (*Principal, error) {
	if len(b) > maxTicketBytes {
		return nil, errBadTicketData
	}
	var tc ticketClaims
	if err := json.Unmarshal(b, &tc); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadTicketData, err)
	}
	if tc.Subject == "" || tc.Expires < 0 {
		return nil, errBadTicketData
	}
	p := &Principal{Subject: tc.Subject, Channels: tc.Channels, Publish: tc.Publish, Via: "ticket"}
	if tc.Expires > 0 {
		p.Expires = time.UnixMilli(tc.Expires)
	}
	return p, nil
}
